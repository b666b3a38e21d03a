"""Packing speech into decoding windows, and splitting the text back into turns.

Whisper decodes 30-second windows. A phone call is mostly turns separated by pauses, and on a stereo
recording each channel is silent half the time. Speech regions found by VAD are packed, in order, into
windows of at most ``WINDOW_S`` seconds with a short silence between regions; each window is decoded
once, without Whisper's own timestamps (which a domain prompt tends to suppress anyway), but with word
timings. Each word is then mapped back to the speech region it fell in, and each region becomes a
segment with its true start and end in the call. So a segment is a turn (or a part of a long one),
silence is never decoded, and padding costs one window per 30 s of speech, not one per turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.audio import SAMPLE_RATE
from pipeline.textclean import to_simplified
from pipeline.transcript import Segment, Word

#: the longest window decoded at once (Whisper's context is 30 s; keep a margin)
WINDOW_S = 28.0
#: a speech region longer than this is cut by VAD at its quietest point
MAX_SPAN_S = 20.0
#: silence put between packed regions, so that the decoder hears a pause between turns
GAP_S = 0.4

#: (segment confidence, [(start, end, text, probability) in window seconds], segment text)
RawSegment = tuple[float, list[tuple[float, float, str, float]], str]


@dataclass(frozen=True)
class Track:
    """One signal to transcribe, with the speaker role of everything on it."""

    role: str
    samples: np.ndarray


@dataclass(frozen=True)
class Window:
    """Packed speech: ``samples`` to decode, and where each region sits in the window and in the call."""

    role: str
    samples: np.ndarray
    #: (start in window, end in window, start in call, end in call), seconds
    regions: tuple[tuple[float, float, float, float], ...]

    def to_call_time(self, t: float, region: int) -> float:
        w0, w1, c0, c1 = self.regions[region]
        return round(min(max(c0 + (t - w0), c0), c1), 3)

    def region_of(self, t: float) -> int:
        """The region a window time falls in (the nearest one when it falls in a gap)."""
        best, best_dist = 0, float("inf")
        for i, (w0, w1, _, _) in enumerate(self.regions):
            dist = 0.0 if w0 <= t <= w1 else min(abs(t - w0), abs(t - w1))
            if dist < best_dist:
                best, best_dist = i, dist
        return best

    def split(self, raw: Sequence[RawSegment], *, role: str, simplify: bool) -> list[Segment]:
        """Turn the decoder's output for this window into one segment per speech region that got words."""
        per_region: dict[int, list[Word]] = {}
        confidence: dict[int, list[float]] = {}
        for seg_conf, words, text in raw:
            if not words:  # no word timings: give the whole text to the region it starts in
                words = [(self.regions[0][0], self.regions[-1][1], text, seg_conf)]
            for start, end, word, prob in words:
                region = self.region_of((start + end) / 2)
                token = zh_token(word) if simplify else word
                per_region.setdefault(region, []).append(Word(
                    self.to_call_time(start, region), self.to_call_time(end, region), token, prob))
                confidence.setdefault(region, []).append(seg_conf)
        out = []
        for region in sorted(per_region):
            words = per_region[region]
            text = "".join(w.text for w in words).strip()
            if not text:
                continue
            _, _, c0, c1 = self.regions[region]
            out.append(Segment(
                start=round(c0, 3), end=round(c1, 3), speaker=role, text=text,
                confidence=float(np.mean(confidence[region])),
                words=tuple(Word(w.start, w.end, w.text.strip(), w.probability) for w in words),
            ))
        return out


def zh_token(word: str) -> str:
    """A Mandarin word token in Simplified script; a lone full-width letter or digit becomes a comma.

    The quantised base model sometimes writes a full-width Latin letter or digit ("Ｇ", "４") where a
    comma belongs; in its own token, between Han characters, it is never a real letter or number.
    """
    if len(word.strip()) == 1 and "\uff10" <= word.strip() <= "\uff5a":
        return "，"
    return to_simplified(word)


def pack_windows(track: Track, spans: Sequence[tuple[int, int]]) -> list[Window]:
    """Pack a track's speech spans (in samples) into decoding windows, in order."""
    windows: list[Window] = []
    pieces: list[np.ndarray] = []
    regions: list[tuple[float, float, float, float]] = []
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
    length = 0.0

    def flush() -> None:
        nonlocal pieces, regions, length
        if regions:
            windows.append(Window(track.role, np.concatenate(pieces).astype(np.float32), tuple(regions)))
        pieces, regions, length = [], [], 0.0

    for start, end in spans:
        piece = track.samples[start:end]
        dur = len(piece) / SAMPLE_RATE
        if dur <= 0:
            continue
        if regions and length + GAP_S + dur > WINDOW_S:
            flush()
        if regions:
            pieces.append(gap)
            length += GAP_S
        regions.append((length, length + dur, start / SAMPLE_RATE, end / SAMPLE_RATE))
        pieces.append(piece)
        length += dur
    flush()
    return windows
