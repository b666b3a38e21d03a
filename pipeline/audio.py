"""Audio in: probe a recording, then decode it to 16 kHz float32, one array per channel.

Every accepted format goes through ffmpeg (via pydub's ffprobe wrapper for probing and an ffmpeg pipe
for decoding): WAV (PCM, µ-law, A-law), MP3, FLAC, OGG/Opus, M4A/AAC, AMR-NB, at any rate from 8 to
48 kHz. Stereo is kept as two channels, since on a hotline recording one side is the agent and the
other the citizen; which is which comes from ``AudioSettings``. Recordings with more than two channels
are refused rather than guessed at.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydub.utils import mediainfo_json

from pipeline.errors import AudioError, AudioTooLarge, EmptyAudio, UnsupportedAudio
from pipeline.settings import AudioSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MAX_CHANNELS = 2
#: below this, a decoded recording holds no usable speech
MIN_DURATION_S = 0.2


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


def decode(path: Path, settings: AudioSettings, *, info: AudioInfo | None = None) -> DecodedAudio:
    """Decode a recording to 16 kHz float32, keeping its channels apart.

    Raises ``AudioTooLarge`` past ``settings.max_duration_s``, ``EmptyAudio`` when nothing decodes (or
    less than 0.2 s), ``AudioError`` when ffmpeg fails.
    """
    info = info or probe(path)
    if info.duration_s > settings.max_duration_s:
        raise AudioTooLarge(
            f"{path.name}: {info.duration_s:.0f} s is longer than the limit of {settings.max_duration_s:.0f} s"
        )
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-map", "0:a:0", "-ac", str(info.channels), "-ar", str(SAMPLE_RATE), "-f", "f32le", "-",
    ]
    proc = subprocess.run(cmd, capture_output=True)
    raw = proc.stdout
    if proc.returncode != 0 and not raw:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(f"{path.name}: cannot decode audio ({reason[-1] if reason else 'ffmpeg failed'})")
    frames = len(raw) // (4 * info.channels)
    if frames < MIN_DURATION_S * SAMPLE_RATE:
        raise EmptyAudio(f"{path.name}: no audio could be decoded (truncated or empty recording)")
    if proc.returncode != 0 or proc.stderr:
        log.warning("%s: decoded with warnings: %s", path.name, proc.stderr.decode("utf-8", "replace")[:300])
    samples = np.frombuffer(raw[: frames * 4 * info.channels], dtype="<f4").reshape(frames, info.channels)
    channels = tuple(np.ascontiguousarray(samples[:, i]) for i in range(info.channels))
    return DecodedAudio(channels=channels, roles=channel_roles(info.channels, settings), info=info)
