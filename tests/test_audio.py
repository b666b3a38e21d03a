"""Decoding every accepted format into 16 kHz per-channel float32, and refusing what we cannot use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import SAMPLE_RATE, channel_roles, decode, probe
from pipeline.errors import AudioTooLarge, EmptyAudio, UnsupportedAudio
from pipeline.settings import AudioSettings


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s stereo source: a 440 Hz tone on the left, 1 kHz on the right, so channels are tellable."""
    path = tmp_path_factory.mktemp("audio") / "source.wav"
    _ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=3:sample_rate=16000",
             "-f", "lavfi", "-i", "sine=frequency=1000:duration=3:sample_rate=16000",
             "-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo", str(path)])
    return path


FORMATS = [
    ("pcm16.wav", ["-c:a", "pcm_s16le", "-ar", "16000"]),
    ("ulaw.wav", ["-c:a", "pcm_mulaw", "-ar", "8000"]),
    ("alaw.wav", ["-c:a", "pcm_alaw", "-ar", "8000"]),
    ("call.mp3", ["-c:a", "libmp3lame", "-ar", "16000", "-b:a", "32k"]),
    ("call.flac", ["-c:a", "flac", "-ar", "44100"]),
    ("call.ogg", ["-c:a", "libopus", "-ar", "48000", "-b:a", "24k"]),
    ("call.m4a", ["-c:a", "aac", "-ar", "22050", "-b:a", "48k"]),
]


@pytest.mark.parametrize(("name", "codec"), FORMATS, ids=[f[0] for f in FORMATS])
@pytest.mark.parametrize("channels", [1, 2])
def test_decodes_format_to_16k_per_channel(source: Path, tmp_path: Path, name: str, codec: list[str],
                                           channels: int) -> None:
    path = tmp_path / name
    _ffmpeg(["-i", str(source), "-ac", str(channels), *codec, str(path)])
    audio = decode(path, AudioSettings())
    assert audio.info.channels == channels
    assert len(audio.channels) == channels
    assert audio.roles == (("mixed",) if channels == 1 else ("agent", "caller"))
    assert abs(audio.duration_s - 3.0) < 0.15
    for ch in audio.channels:
        assert ch.dtype == np.float32
        assert 0.1 < float(np.abs(ch).max()) <= 1.0
    if channels == 2:  # the left channel holds 440 Hz, the right 1 kHz: they must not be swapped or mixed
        peaks = [np.argmax(np.abs(np.fft.rfft(ch[:SAMPLE_RATE]))) for ch in audio.channels]
        assert peaks == [440, 1000]


def test_amr_nb_telephone_recording(source: Path, tmp_path: Path) -> None:
    path = tmp_path / "call.amr"  # Debian's ffmpeg decodes AMR-NB but cannot encode it; sox can
    subprocess.run(["sox", str(source), "-r", "8000", "-c", "1", "-t", "amr-nb", str(path)], check=True)
    audio = decode(path, AudioSettings())
    assert audio.roles == ("mixed",) and abs(audio.duration_s - 3.0) < 0.15


def test_channel_roles_follow_settings() -> None:
    assert channel_roles(2, AudioSettings(agent_channel=1, caller_channel=0)) == ("caller", "agent")
    assert channel_roles(1, AudioSettings()) == ("mixed",)


def test_more_than_two_channels_is_refused(source: Path, tmp_path: Path) -> None:
    path = tmp_path / "surround.wav"
    _ffmpeg(["-i", str(source), "-ac", "6", str(path)])
    with pytest.raises(UnsupportedAudio, match="6 channels"):
        probe(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudio, match="empty"):
        probe(path)


def test_text_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("caller says the lift is broken\n" * 20)
    with pytest.raises(UnsupportedAudio, match="not an audio file"):
        probe(path)


def test_truncated_wav_without_samples(source: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.wav"
    _ffmpeg(["-i", str(source), "-c:a", "pcm_s16le", str(full)])
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:200])
    with pytest.raises(EmptyAudio):
        decode(cut, AudioSettings())


def test_too_long_is_refused_before_decoding(source: Path) -> None:
    with pytest.raises(AudioTooLarge, match="longer than the limit"):
        decode(source, AudioSettings(max_duration_s=1.0))
