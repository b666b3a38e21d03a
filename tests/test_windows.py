"""Packing speech into decoding windows and mapping words back to call time and turns."""

from __future__ import annotations

import numpy as np

from pipeline.audio import SAMPLE_RATE
from pipeline.windows import GAP_S, WINDOW_S, Track, pack_windows


def _track(seconds: float) -> Track:
    return Track("caller", np.ones(int(seconds * SAMPLE_RATE), dtype=np.float32))


def test_regions_are_packed_in_order_with_gaps() -> None:
    spans = [(int(1 * SAMPLE_RATE), int(3 * SAMPLE_RATE)), (int(10 * SAMPLE_RATE), int(12.5 * SAMPLE_RATE))]
    [window] = pack_windows(_track(20), spans)
    assert len(window.samples) == int((2 + GAP_S + 2.5) * SAMPLE_RATE)
    assert window.regions[0] == (0.0, 2.0, 1.0, 3.0)
    w0, w1, c0, c1 = window.regions[1]
    assert (round(w0, 3), round(w1, 3), c0, c1) == (2.4, 4.9, 10.0, 12.5)


def test_windows_never_exceed_the_limit() -> None:
    spans = [(int(s * SAMPLE_RATE), int((s + 9) * SAMPLE_RATE)) for s in range(0, 100, 10)]
    windows = pack_windows(_track(110), spans)
    assert len(windows) == 4
    assert all(len(w.samples) / SAMPLE_RATE <= WINDOW_S for w in windows)
    assert sum(len(w.regions) for w in windows) == 10


def test_split_maps_words_to_turns_in_call_time() -> None:
    spans = [(int(5 * SAMPLE_RATE), int(8 * SAMPLE_RATE)), (int(20 * SAMPLE_RATE), int(22 * SAMPLE_RATE))]
    [window] = pack_windows(_track(30), spans)
    words = [(0.1, 0.5, "我", 0.9), (0.5, 0.9, "姓", 0.9), (0.9, 1.3, "陳", 0.8),
             (3.6, 4.0, "電", 0.9), (4.0, 4.4, "話", 0.9)]
    segments = window.split([(0.8, words, "我姓陳電話")], simplify=True)
    assert [s.text for s in segments] == ["我姓陈", "电话"]
    assert (segments[0].start, segments[0].end) == (5.0, 8.0)
    assert (segments[1].start, segments[1].end) == (20.0, 22.0)
    assert segments[1].words[0].start == 20.0 + (3.6 - 3.4)
    assert all(s.speaker == "caller" for s in segments)


def test_no_speech_no_windows() -> None:
    assert pack_windows(_track(5), []) == []
