"""Packing speech into decoding windows, and splitting the text back into turns.

Whisper decodes 30-second windows. A phone call is mostly turns separated by pauses, and on a stereo
recording each channel is silent half the time. Speech regions found by VAD are packed, in order, into
windows of at most ``WINDOW_S`` seconds with a short silence between regions; each window is decoded
once, without Whisper's own timestamps (which a domain prompt tends to suppress anyway), but with word
timings. Each word is then mapped back to the speech region it fell in, and each region becomes a
segment of its party with its true start and end in the call. So a segment is a turn (or a part of a
long one), silence is never decoded, and padding costs one window per 28 s of speech, not one per turn.

The transcriber packs each party's track on its own: the decoder then hears one voice per window, which
on stereo calls comes out clearly more accurate than the two parties' turns interleaved (and costs no
more, since windows are decoded side by side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.asr.audio import SAMPLE_RATE
from pipeline.text.chinese import to_simplified
from pipeline.transcript import Segment, Word

#: the longest window decoded at once (Whisper's context is 30 s; keep a margin)
WINDOW_S = 28.0
#: a speech region longer than this is cut by VAD at its quietest point
MAX_SPAN_S = 20.0
#: silence put between packed regions, so that the decoder hears a pause between turns
GAP_S = 0.4

#: a word shorter than this has no duration; UNPLACED_RUN of them in a row are text with no sound under it
NO_DURATION_S = 0.01
UNPLACED_RUN = 3

#: (segment confidence, [(start, end, text, probability) in window seconds], segment text)
RawSegment = tuple[float, list[tuple[float, float, str, float]], str]


@dataclass(frozen=True)
class Track:
    """One signal to transcribe, with the speaker role of everything on it.

    ``offset`` is the call sample of ``samples[0]`` (a track may be one block of a long recording)."""

    role: str
    samples: np.ndarray
    offset: int = 0


@dataclass(frozen=True)
class Region:
    """A stretch of speech of one party: ``samples`` start at call sample ``start``."""

    role: str
    start: int
    samples: np.ndarray

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


@dataclass(frozen=True)
class Window:
    """Packed speech: ``samples`` to decode, where each region sits in the window and in the call, and
    whose speech each region is."""

    samples: np.ndarray
    #: (start in window, end in window, start in call, end in call), seconds
    regions: tuple[tuple[float, float, float, float], ...]
    #: the party of each region
    roles: tuple[str, ...]

    @property
    def speech_s(self) -> float:
        """Seconds of speech in the window (the gaps between regions left out)."""
        return sum(w1 - w0 for w0, w1, _, _ in self.regions)

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

    def split(self, raw: Sequence[RawSegment], *, simplify: bool) -> list[Segment]:
        """Turn the decoder's output for this window into one segment per speech region that got words,
        each with its region's party."""
        per_region: dict[int, list[Word]] = {}
        confidence: dict[int, list[float]] = {}
        for seg_conf, words, text in raw:
            if not words:  # no word timings: give the whole text to the region it starts in
                words = [(self.regions[0][0], self.regions[-1][1], text, seg_conf)]
            for start, end, word, prob in placed_words(words):
                region = self.region_of((start + end) / 2)
                token = zh_token(word) if simplify else word
                per_region.setdefault(region, []).append(Word(
                    self.to_call_time(start, region), self.to_call_time(end, region), token, prob))
                confidence.setdefault(region, []).append(seg_conf)
        out = []
        for region in sorted(per_region):
            heard = per_region[region]
            text = "".join(w.text for w in heard).strip()
            if not text:
                continue
            _, _, c0, c1 = self.regions[region]
            out.append(Segment(
                start=round(c0, 3), end=round(c1, 3), speaker=self.roles[region], text=text,
                confidence=float(np.mean(confidence[region])),
                words=tuple(Word(w.start, w.end, w.text.strip(), w.probability) for w in heard),
            ))
        return out


def placed_words(words: Sequence[tuple[float, float, str, float]]) -> list[tuple[float, float, str, float]]:
    """The words the alignment could place on audio: a run of ``UNPLACED_RUN`` or more words of no
    duration is dropped.

    Such runs are text the decoder went on writing with no sound under it (most often the initial
    prompt continued after a short turn: "您好" becoming "您好，请问您贵姓？我姓张，电话……"); the alignment
    piles them up on one instant. In real speech a word of no duration is rare (one in 1,500 on the
    sample calls) and never three in a row.
    """
    kept: list[tuple[float, float, str, float]] = []
    run: list[tuple[float, float, str, float]] = []
    for word in words:
        if word[1] - word[0] < NO_DURATION_S:
            run.append(word)
            continue
        if len(run) < UNPLACED_RUN:
            kept.extend(run)
        run = []
        kept.append(word)
    if len(run) < UNPLACED_RUN:
        kept.extend(run)
    return kept


def zh_token(word: str) -> str:
    """A Mandarin word token in Simplified script; a lone full-width letter or digit becomes a comma.

    The quantised base model sometimes writes a full-width Latin letter or digit ("Ｇ", "４") where a
    comma belongs; in its own token, between Han characters, it is never a real letter or number.
    """
    if len(word.strip()) == 1 and "\uff10" <= word.strip() <= "\uff5a":
        return "，"
    return to_simplified(word)


def pack_windows(track: Track, spans: Sequence[tuple[int, int]]) -> list[Window]:
    """Pack one track's speech spans (in samples of ``track.samples``) into decoding windows, in order."""
    return pack_regions([Region(track.role, track.offset + start, track.samples[start:end])
                         for start, end in spans])


def pack_regions(regions: Sequence[Region]) -> list[Window]:
    """Pack speech regions into decoding windows, in call order (by start); each region keeps its party."""
    packer = WindowPacker()
    return [*packer.add(regions), *packer.flush()]


class WindowPacker:
    """Packs regions arriving block by block into windows, so that a block's end does not end a window.

    ``add`` returns the windows that are full; the last one stays open for the next block's regions
    (its samples are copied, since a block's arrays may be reused), and ``flush`` closes it.
    """

    def __init__(self) -> None:
        self._pieces: list[np.ndarray] = []
        self._placed: list[tuple[float, float, float, float]] = []
        self._roles: list[str] = []
        self._length = 0.0
        self._gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)

    def add(self, regions: Sequence[Region]) -> list[Window]:
        """Place ``regions`` (in call order after those added before); the windows completed by them."""
        done: list[Window] = []
        step = int(WINDOW_S * SAMPLE_RATE)
        pieces = [Region(r.role, r.start + i, r.samples[i: i + step])  # longer than a window: cut it
                  for r in regions for i in range(0, len(r.samples), step)]
        for region in sorted(pieces, key=lambda r: (r.start, r.end)):
            dur = len(region.samples) / SAMPLE_RATE
            if dur <= 0:
                continue
            if self._placed and self._length + GAP_S + dur > WINDOW_S:
                done.extend(self.flush())
            if self._placed:
                self._pieces.append(self._gap)
                self._length += GAP_S
            self._placed.append((self._length, self._length + dur, region.start / SAMPLE_RATE,
                                 region.end / SAMPLE_RATE))
            self._roles.append(region.role)
            self._pieces.append(region.samples)
            self._length += dur
        if self._pieces:  # the open window outlives this block's arrays
            self._pieces = [np.concatenate(self._pieces).astype(np.float32)]
        return done

    def flush(self) -> list[Window]:
        """Close the open window, if any."""
        if not self._placed:
            return []
        window = Window(np.concatenate(self._pieces).astype(np.float32), tuple(self._placed), tuple(self._roles))
        self._pieces, self._placed, self._roles, self._length = [], [], [], 0.0
        return [window]
