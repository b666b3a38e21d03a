"""The bundled model is assembled once, checked, and safe to assemble from two processes at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.asr.model_store import BUNDLED_SIZE, bundled_model_dir, resolve_model_path
from pipeline.errors import ModelError

ASSEMBLE = "import sys; from pathlib import Path; from pipeline.asr.model_store import bundled_model_dir; " \
           "print(bundled_model_dir(Path(sys.argv[1])))"


def test_two_processes_assemble_one_model(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", ASSEMBLE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    target = tmp_path / "faster-whisper-base"
    assert outs == [str(target)] * 2
    assert (target / "model.bin").stat().st_size == BUNDLED_SIZE
    assert {p.name for p in target.iterdir()} == {
        "model.bin", "config.json", "tokenizer.json", "vocabulary.txt", ".verified.json"}


def test_a_damaged_model_is_reassembled(tmp_path: Path) -> None:
    target = bundled_model_dir(tmp_path)
    with (target / "model.bin").open("r+b") as fh:
        fh.truncate(1000)
    assert bundled_model_dir(tmp_path) == target
    assert (target / "model.bin").stat().st_size == BUNDLED_SIZE
    assert json.loads((target / ".verified.json").read_text())["size"] == BUNDLED_SIZE


def test_configured_model_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model_path(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no model.bin"):
        resolve_model_path(tmp_path / "empty", tmp_path)
