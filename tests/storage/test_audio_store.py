"""The content-addressed audio store on a real directory."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from pipeline.errors import AudioTooLarge, EmptyAudio
from pipeline.storage import audio_store


def _leftovers(data_dir: Path) -> list[Path]:
    return list((data_dir / "tmp").glob("*")) if (data_dir / "tmp").exists() else []


def test_bytes_are_kept_once_under_their_hash(tmp_path: Path) -> None:
    payload = b"RIFF" + bytes(range(256)) * 4000
    sha = hashlib.sha256(payload).hexdigest()
    first = audio_store.receive(tmp_path, audio_store.iter_chunks(io.BytesIO(payload), chunk_bytes=7000))
    assert (first.sha256, first.size_bytes) == (sha, len(payload))
    relative = audio_store.keep(tmp_path, first, ext=".WAV")
    assert relative == f"audio/{sha[:2]}/{sha[2:4]}/{sha}.wav"
    second = audio_store.receive(tmp_path, [payload[:10], payload[10:]])
    assert audio_store.keep(tmp_path, second, ext="wav") == relative
    assert audio_store.resolve(tmp_path, relative).read_bytes() == payload
    assert list((tmp_path / "audio").rglob("*.wav")) == [tmp_path / relative]
    assert _leftovers(tmp_path) == []


def test_over_the_limit_stops_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(AudioTooLarge):
        audio_store.receive(tmp_path, [b"x" * 600, b"x" * 600], max_bytes=1000)
    assert _leftovers(tmp_path) == []


def test_empty_upload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmptyAudio):
        audio_store.receive(tmp_path, [])
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("ext,expected", [("mp3", "mp3"), (".Flac", "flac"), ("../x", "bin"), (None, "bin")])
def test_extensions_are_sanitised(ext: str | None, expected: str) -> None:
    assert audio_store.normalise_ext(ext) == expected
