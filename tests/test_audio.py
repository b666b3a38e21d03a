"""Decoding every accepted format into 16 kHz per-channel float32, streaming long recordings block by block,
and refusing what we cannot use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.asr.audio import SAMPLE_RATE, DecodedAudio, StreamedAudio, channel_roles, decode, probe, stream_blocks
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


# -- long recordings: decoded block by block ---------------------------------------------------------------
@pytest.fixture(scope="module")
def stereo_call(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8 kHz µ-law stereo file, as hotline recordings come."""
    path = tmp_path_factory.mktemp("stream") / "call.wav"
    _ffmpeg(["-i", str(source), "-c:a", "pcm_mulaw", "-ar", "8000", str(path)])
    return path


@pytest.mark.parametrize("block_s", [0.7, 1.0, 2.5, 3.0, 60.0])
def test_blocks_from_the_pipe_join_to_the_whole_decode(stereo_call: Path, block_s: float) -> None:
    whole = decode(stereo_call, AudioSettings())
    assert isinstance(whole, DecodedAudio)
    pieces: list[list[np.ndarray]] = [[], []]
    starts, lasts = [], []
    for block in stream_blocks(stereo_call, 2, block_s):
        starts.append(block.start)
        lasts.append(block.last)
        assert block.frames <= int(block_s * SAMPLE_RATE)
        for i, ch in enumerate(block.channels):
            pieces[i].append(ch.copy())  # the stream reuses its arrays for the next block
    assert lasts == [False] * (len(lasts) - 1) + [True]
    assert starts == [sum(len(p) for p in pieces[0][:k]) for k in range(len(starts))]
    for joined, expected in zip((np.concatenate(p) for p in pieces), whole.channels, strict=True):
        assert np.array_equal(joined, expected)
    in_memory = list(whole.blocks(block_s))
    assert [b.start for b in in_memory] == starts and [b.last for b in in_memory] == lasts


def test_a_long_recording_is_streamed_not_decoded(stereo_call: Path) -> None:
    audio = decode(stereo_call, AudioSettings(), stream_after_s=2.0)
    assert isinstance(audio, StreamedAudio)
    assert audio.roles == ("agent", "caller")
    assert audio.duration_s == audio.info.duration_s  # ffprobe's figure until a pass has counted
    frames = sum(block.frames for block in audio.blocks(1.0))
    assert audio.duration_s == frames / SAMPLE_RATE
    assert abs(audio.duration_s - 3.0) < 0.15
    assert sum(block.frames for block in audio.blocks(1.0)) == frames  # it can be read again


def test_a_stream_stopped_early_leaves_no_ffmpeg_behind(stereo_call: Path) -> None:
    def children() -> set[str]:
        found: set[str] = set()
        for task in Path("/proc/self/task").iterdir():
            found.update((task / "children").read_text().split())
        return found

    before = children()
    blocks = stream_blocks(stereo_call, 2, 0.5)
    next(blocks)
    assert children() - before  # ffmpeg is running
    blocks.close()
    assert children() == before


def test_a_long_recording_that_does_not_decode_is_refused_at_once(stereo_call: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.wav"
    cut.write_bytes(stereo_call.read_bytes()[:300])
    info = probe(stereo_call)  # what the header promised
    with pytest.raises(EmptyAudio):
        decode(cut, AudioSettings(), info=info, stream_after_s=1.0)
