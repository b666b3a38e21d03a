"""The audio store: every recording kept once, named by the SHA-256 of its bytes.

Layout: ``<data_dir>/audio/ab/cd/<sha256>.<ext>`` (the first two byte pairs of the hash fan the files
out over directories). Bytes arrive in a temporary file under ``<data_dir>/tmp`` while they are hashed
and counted, and reach their final name by an atomic rename, so a reader never sees half a file and two
writers of the same bytes end with one file. Paths kept in the database are relative to the data
directory, so the directory can move or be mounted elsewhere on another host.

Example::

    pending = receive(settings.data_dir, chunks, max_bytes=limit)   # hashed, counted, not yet stored
    relative = keep(settings.data_dir, pending, ext="wav")         # "audio/3f/2a/3f2a....wav"
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import AudioTooLarge, EmptyAudio, StorageError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
_EXT = re.compile(r"^[a-z0-9]{1,8}$")


@dataclass(frozen=True)
class PendingAudio:
    """Bytes received into a temporary file, hashed, not yet kept in the store."""

    path: Path
    sha256: str
    size_bytes: int


def iter_chunks(stream: BinaryIO, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Read a binary stream in chunks until it ends."""
    while chunk := stream.read(chunk_bytes):
        yield chunk


def receive(
    data_dir: Path, chunks: Iterable[bytes], *, max_bytes: int | None = None, ext: str | None = None
) -> PendingAudio:
    """Write ``chunks`` to a temporary file under ``<data_dir>/tmp``, hashing and counting as they come.

    Raises ``AudioTooLarge`` as soon as more than ``max_bytes`` arrive and ``EmptyAudio`` for zero bytes;
    in both cases (and on any other error) the temporary file is removed. The caller either ``keep``s
    or ``discard``s the result. ``ext`` names the temporary file's extension, for decoders that look at it.
    """
    tmp_dir = Path(data_dir) / "tmp"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=f".part.{normalise_ext(ext)}", dir=tmp_dir)
    except OSError as exc:
        raise StorageError(f"cannot write to the audio store under {data_dir}: {exc}", stage="store") from exc
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise AudioTooLarge(
                        f"upload is larger than the limit of {max_bytes / (1 << 20):g} MiB", stage="upload"
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise EmptyAudio("the upload is empty (0 bytes)", stage="upload")
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise StorageError(f"cannot write to the audio store: {exc}", stage="store") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return PendingAudio(path=path, sha256=digest.hexdigest(), size_bytes=size)


def relative_path_for(sha256: str, ext: str) -> str:
    """Where audio with this hash lives, relative to the data directory (``audio/ab/cd/<sha>.<ext>``)."""
    ext = normalise_ext(ext)
    return f"audio/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


def normalise_ext(ext: str | None) -> str:
    """A safe lower-case file extension (``"bin"`` when none usable is given)."""
    ext = (ext or "").lower().lstrip(".")
    return ext if _EXT.match(ext) else "bin"


def keep(data_dir: Path, pending: PendingAudio, *, ext: str) -> str:
    """Move received bytes to their content address and return the path relative to ``data_dir``.

    When a file with the same hash is already there, the temporary copy is dropped and the existing
    file is kept (same bytes, same name).
    """
    relative = relative_path_for(pending.sha256, ext)
    target = Path(data_dir) / relative
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.stat().st_size == pending.size_bytes:
            pending.path.unlink(missing_ok=True)
        else:
            os.replace(pending.path, target)
    except OSError as exc:
        pending.path.unlink(missing_ok=True)
        raise StorageError(f"cannot store audio {pending.sha256[:12]}: {exc}", stage="store") from exc
    return relative


def discard(pending: PendingAudio) -> None:
    """Remove received bytes that will not be kept."""
    pending.path.unlink(missing_ok=True)


def resolve(data_dir: Path, relative_path: str) -> Path:
    """The absolute path of a stored recording."""
    return (Path(data_dir) / relative_path).resolve()
