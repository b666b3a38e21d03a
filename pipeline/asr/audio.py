"""Audio in: probe a recording, then decode it to 16 kHz float32, one array per channel.

Every accepted format goes through ffmpeg (via pydub's ffprobe wrapper for probing and an ffmpeg pipe
for decoding): WAV (PCM, µ-law, A-law), MP3, FLAC, OGG/Opus, M4A/AAC, AMR-NB, at any rate from 8 to
48 kHz. Stereo is kept as two channels, since on a hotline recording one side is the agent and the
other the citizen; which is which comes from ``AudioSettings``. Recordings with more than two channels
are refused rather than guessed at.

A call of a few minutes is decoded whole (``DecodedAudio``). A recording longer than one block
(``BLOCK_S``, ten minutes) is not: ``decode`` returns a ``StreamedAudio`` that reads ffmpeg's output
pipe one block at a time when it is transcribed, so a two-hour stereo recording never needs its whole
signal (2 x 115 M samples, 920 MB of float32) in memory at once. Both kinds offer ``blocks()``; the
transcriber consumes nothing else.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
from pydub.utils import mediainfo_json

from pipeline.errors import AudioError, AudioTooLarge, EmptyAudio, UnsupportedAudio
from pipeline.settings import AudioSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MAX_CHANNELS = 2
#: below this, a decoded recording holds no usable speech
MIN_DURATION_S = 0.2
#: recordings are transcribed in blocks of this many seconds; longer ones are streamed, never held whole
BLOCK_S = 600.0
#: ffmpeg's output is read in pieces of this many seconds (the only buffer besides the block itself)
_READ_S = 10.0


@dataclass(frozen=True)
class AudioInfo:
    """What ffprobe says about a recording."""

    format: str
    codec: str
    sample_rate: int
    channels: int
    duration_s: float


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded recording: ``channels[i]`` is 16 kHz mono float32 in [-1, 1], ``roles[i]`` its speaker."""

    channels: tuple[np.ndarray, ...]
    roles: tuple[str, ...]
    info: AudioInfo

    @property
    def duration_s(self) -> float:
        return len(self.channels[0]) / SAMPLE_RATE if self.channels else 0.0

    def mixdown(self) -> np.ndarray:
        """All channels averaged into one (what a mono recording of the call would hold)."""
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0).astype(np.float32)

    def blocks(self, block_s: float = BLOCK_S) -> Iterator[AudioBlock]:
        """The recording in consecutive blocks of ``block_s`` seconds (views, no copies)."""
        step = max(int(block_s * SAMPLE_RATE), 1)
        total = len(self.channels[0]) if self.channels else 0
        for start in range(0, total, step):
            yield AudioBlock(start=start, channels=tuple(ch[start: start + step] for ch in self.channels),
                             last=start + step >= total)


@dataclass(frozen=True)
class AudioBlock:
    """Consecutive samples of every channel: ``channels[i][k]`` is sample ``start + k`` of channel ``i``."""

    start: int
    channels: tuple[np.ndarray, ...]
    last: bool
    """True for the recording's final block."""

    @property
    def frames(self) -> int:
        return len(self.channels[0]) if self.channels else 0


@dataclass(frozen=True)
class StreamedAudio:
    """A long recording, decoded block by block from an ffmpeg pipe each time ``blocks()`` is iterated.

    ``duration_s`` is ffprobe's figure until a full pass has counted the decoded samples.
    """

    path: Path
    roles: tuple[str, ...]
    info: AudioInfo
    _decoded: list[int] = field(default_factory=list, compare=False, repr=False)

    @property
    def duration_s(self) -> float:
        return self._decoded[-1] / SAMPLE_RATE if self._decoded else self.info.duration_s

    def blocks(self, block_s: float = BLOCK_S) -> Iterator[AudioBlock]:
        """Decode and yield the recording block by block; at most one block is held here at a time."""
        frames = 0
        for block in stream_blocks(self.path, self.info.channels, block_s):
            frames = block.start + block.frames
            yield block
        self._decoded.append(frames)


def _require_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise AudioError("ffmpeg and ffprobe are needed to read audio; install ffmpeg (apt-get install ffmpeg)")


def probe(path: Path) -> AudioInfo:
    """Describe a recording without decoding it.

    Raises ``EmptyAudio`` for a zero-byte file, ``UnsupportedAudio`` for data ffprobe cannot read as audio
    (a text file named ``.wav``) or for more than two channels.

    >>> probe(Path("audio_samples/zh_01.wav"))        # doctest: +SKIP
    AudioInfo(format='wav', codec='pcm_mulaw', sample_rate=8000, channels=2, duration_s=31.5)
    """
    _require_ffmpeg()
    if not path.is_file():
        raise AudioError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise EmptyAudio(f"{path.name}: the file is empty")
    try:
        info = mediainfo_json(str(path))
    except (OSError, ValueError) as exc:
        raise UnsupportedAudio(f"{path.name}: not a readable audio file ({exc})") from exc
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise UnsupportedAudio(f"{path.name}: not an audio file (no audio stream found)")
    stream = streams[0]
    channels = int(stream.get("channels") or 0)
    if channels < 1:
        raise UnsupportedAudio(f"{path.name}: the audio stream has no channels")
    if channels > MAX_CHANNELS:
        raise UnsupportedAudio(
            f"{path.name}: {channels} channels; only mono or two-channel (agent/caller) recordings are accepted"
        )
    fmt = info.get("format", {})
    duration = stream.get("duration") or fmt.get("duration") or 0.0
    try:
        duration_s = float(duration)
    except (TypeError, ValueError):
        duration_s = 0.0
    return AudioInfo(
        format=str(fmt.get("format_name", "unknown")),
        codec=str(stream.get("codec_name", "unknown")),
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=channels,
        duration_s=round(duration_s, 3),
    )


def channel_roles(channels: int, settings: AudioSettings) -> tuple[str, ...]:
    """Speaker role of each channel: ``("mixed",)`` for mono; agent/caller by settings for stereo."""
    if channels == 1:
        return ("mixed",)
    roles = ["caller", "caller"]
    roles[settings.agent_channel] = "agent"
    if settings.agent_channel == settings.caller_channel:
        raise AudioError("agent_channel and caller_channel must differ")
    return tuple(roles)


def _ffmpeg_command(path: Path, channels: int, *extra: str) -> list[str]:
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), *extra,
            "-map", "0:a:0", "-ac", str(channels), "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]


def _ffmpeg_reason(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "ffmpeg failed"


def stream_blocks(path: Path, channels: int, block_s: float = BLOCK_S) -> Iterator[AudioBlock]:
    """Run ffmpeg on ``path`` and yield its output as blocks of ``block_s`` seconds, one at a time.

    The block's arrays are reused for the next block: a consumer that keeps samples past its turn must
    copy them. Apart from the block, only a ten-second read buffer is held, so memory does not grow with
    the recording. ffmpeg is stopped if the consumer stops early. Raises ``EmptyAudio`` when nothing
    decodes and ``AudioError`` when ffmpeg fails before any audio; a recording cut short mid-way yields
    what decoded, with a warning, as ``decode`` does.
    """
    _require_ffmpeg()
    block_frames = max(int(block_s * SAMPLE_RATE), 1)
    read_frames = min(int(_READ_S * SAMPLE_RATE), block_frames)
    frame_bytes = 4 * channels
    buffer = np.empty((read_frames, channels), dtype="<f4")
    raw = buffer.data.cast("B")
    block = tuple(np.empty(block_frames, dtype=np.float32) for _ in range(channels))
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(_ffmpeg_command(path, channels), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errors)
        stdout = cast(io.BufferedReader, proc.stdout)
        partial = b""  # the bytes of a frame split between two reads

        def read() -> int:
            """Refill the (consumed) read buffer from the pipe; the whole frames in it, 0 at the end."""
            nonlocal partial
            got = len(partial)
            raw[:got] = partial
            while got < len(raw):  # a pipe read may return less than asked
                n = stdout.readinto(raw[got:])
                if not n:
                    break
                got += n
            frames, rest = divmod(got, frame_bytes)
            partial = bytes(raw[frames * frame_bytes: got])
            return frames

        start = 0
        try:
            ready = read()  # frames in the read buffer, not yet copied into the block
            while ready:
                filled = 0
                while ready and filled < block_frames:
                    take = min(ready, block_frames - filled)
                    for i in range(channels):
                        block[i][filled: filled + take] = buffer[:take, i]
                    filled += take
                    if take < ready:  # the block is full: the rest waits for the next one
                        buffer[: ready - take] = buffer[take:ready]
                        ready -= take
                    else:
                        ready = read()
                yield AudioBlock(start, tuple(ch[:filled] for ch in block), last=ready == 0)
                start += filled
            returncode = proc.wait()
        finally:
            if proc.poll() is None:  # the consumer stopped early
                proc.kill()
                proc.wait()
            stdout.close()
        errors.seek(0)
        stderr = errors.read()
    if start < MIN_DURATION_S * SAMPLE_RATE:
        if returncode != 0 and start == 0:
            raise AudioError(f"{path.name}: cannot decode audio ({_ffmpeg_reason(stderr)})")
        raise EmptyAudio(f"{path.name}: no audio could be decoded (truncated or empty recording)")
    if returncode != 0 or stderr:
        log.warning("%s: decoded with warnings: %s", path.name, stderr.decode("utf-8", "replace")[:300])


def decode(
    path: Path, settings: AudioSettings, *, info: AudioInfo | None = None, stream_after_s: float = BLOCK_S,
) -> DecodedAudio | StreamedAudio:
    """Decode a recording to 16 kHz float32, keeping its channels apart.

    A recording of up to ``stream_after_s`` seconds (one block) comes back decoded (``DecodedAudio``).
    A longer one comes back as ``StreamedAudio``: its first second is decoded now, to check that it
    decodes at all, and the rest block by block when it is transcribed.

    Raises ``AudioTooLarge`` past ``settings.max_duration_s``, ``EmptyAudio`` when nothing decodes (or
    less than 0.2 s), ``AudioError`` when ffmpeg fails.
    """
    info = info or probe(path)
    if info.duration_s > settings.max_duration_s:
        raise AudioTooLarge(
            f"{path.name}: {info.duration_s:.0f} s is longer than the limit of {settings.max_duration_s:.0f} s"
        )
    roles = channel_roles(info.channels, settings)
    if info.duration_s > stream_after_s:
        _decode_whole(path, info, "-t", "1")
        return StreamedAudio(path=path, roles=roles, info=info)
    return DecodedAudio(channels=_decode_whole(path, info), roles=roles, info=info)


def _decode_whole(path: Path, info: AudioInfo, *extra: str) -> tuple[np.ndarray, ...]:
    proc = subprocess.run(_ffmpeg_command(path, info.channels, *extra), capture_output=True)
    raw = proc.stdout
    if proc.returncode != 0 and not raw:
        raise AudioError(f"{path.name}: cannot decode audio ({_ffmpeg_reason(proc.stderr)})")
    frames = len(raw) // (4 * info.channels)
    if frames < MIN_DURATION_S * SAMPLE_RATE:
        raise EmptyAudio(f"{path.name}: no audio could be decoded (truncated or empty recording)")
    if proc.returncode != 0 or proc.stderr:
        log.warning("%s: decoded with warnings: %s", path.name, proc.stderr.decode("utf-8", "replace")[:300])
    samples = np.frombuffer(raw[: frames * 4 * info.channels], dtype="<f4").reshape(frames, info.channels)
    return tuple(np.ascontiguousarray(samples[:, i]) for i in range(info.channels))
