"""Which signals of a recording are transcribed, and as whose speech.

A true two-party stereo call gives one track per party (agent and caller apart, each decoded on its own);
a channel that is silent or a copy of the other folds the call into one mixed track. Decided on the
recording's first block, which is the whole of any ordinary call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.asr.audio import SAMPLE_RATE, DecodedAudio
from pipeline.asr.windows import Track

#: a channel whose RMS is below this fraction of the loudest channel's carries no party of its own
SILENT_CHANNEL_RATIO = 0.02

#: channels correlated above this are the same signal (a mono call stored as stereo)
DUPLICATE_CHANNEL_CORR = 0.97

# -- tracks ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Which signals of a recording are transcribed, and as whose speech.

    ``parties``: each channel on its own with its role; ``channel``: only channel ``channel``, as one
    mixed speaker (the other is silent); ``mixdown``: the channels averaged, as one mixed speaker.
    """

    kind: str
    roles: tuple[str, ...]
    channel: int = 0

    def tracks(self, channels: Sequence[np.ndarray], offset: int = 0) -> list[Track]:
        if self.kind == "parties":
            return [Track(role, ch, offset) for role, ch in zip(self.roles, channels, strict=True)]
        if self.kind == "channel":
            return [Track("mixed", channels[self.channel], offset)]
        if len(channels) == 1:
            return [Track("mixed", channels[0], offset)]
        mixed = np.add(channels[0], channels[1], dtype=np.float32)
        mixed *= 0.5
        return [Track("mixed", mixed, offset)]

    @property
    def track_roles(self) -> list[str]:
        return list(self.roles) if self.kind == "parties" else ["mixed"]

def _rms(samples: np.ndarray, step: int = 1 << 20) -> float:
    """Root mean square, summed in float64 a megasample at a time (no float64 copy of a long block)."""
    if not len(samples):
        return 0.0
    total = sum(float(np.dot(piece, piece)) for piece in
                (samples[i: i + step].astype(np.float64) for i in range(0, len(samples), step)))
    return (total / len(samples)) ** 0.5

def choose_layout(channels: Sequence[np.ndarray], roles: Sequence[str]) -> Layout:
    """One track per party for a true two-party stereo call, else one mixed track.

    A channel below ``SILENT_CHANNEL_RATIO`` of the loudest one's RMS carries no party; two channels
    correlated above ``DUPLICATE_CHANNEL_CORR`` over their first minute are one signal stored twice.
    """
    roles = tuple(roles)
    if len(channels) == 1:
        return Layout("mixdown", roles)
    rms = [_rms(ch) for ch in channels]
    loudest = max(rms)
    if loudest == 0.0:
        return Layout("mixdown", roles)
    live = [i for i, value in enumerate(rms) if value >= SILENT_CHANNEL_RATIO * loudest]
    if len(live) == 1:
        return Layout("channel", roles, channel=live[0])
    a, b = channels
    corr = float(np.corrcoef(a[: SAMPLE_RATE * 60], b[: SAMPLE_RATE * 60])[0, 1]) if len(a) > 1 else 1.0
    if corr > DUPLICATE_CHANNEL_CORR:
        return Layout("mixdown", roles)
    return Layout("parties", roles)

def split_tracks(audio: DecodedAudio) -> list[Track]:
    """The tracks to decode: one per party for a true two-party stereo call, else one mixed track."""
    return choose_layout(audio.channels, audio.roles).tracks(audio.channels)
