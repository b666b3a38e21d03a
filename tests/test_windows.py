"""Packing speech into decoding windows and mapping words back to call time and turns."""

from __future__ import annotations

import numpy as np

from pipeline.asr.audio import SAMPLE_RATE
from pipeline.asr.windows import GAP_S, WINDOW_S, Region, Track, WindowPacker, pack_regions, pack_windows


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


def test_a_window_open_at_a_block_end_goes_on_in_the_next_block() -> None:
    rng = np.random.default_rng(1)
    call = rng.standard_normal(60 * SAMPLE_RATE).astype(np.float32)
    spans = [(s * SAMPLE_RATE, (s + 4) * SAMPLE_RATE) for s in range(0, 56, 6)]  # ten 4 s turns
    regions = [Region("caller", a, call[a:b]) for a, b in spans]
    at_once = pack_regions(regions)

    packer = WindowPacker()
    block = np.empty(30 * SAMPLE_RATE, dtype=np.float32)  # one buffer, reused for each block (as a stream does)
    windows = []
    for start in (0, 30 * SAMPLE_RATE):
        block[:] = call[start: start + len(block)]
        inside = [Region("caller", a, block[a - start: b - start]) for a, b in spans if start <= a < start + len(block)]
        windows.extend(packer.add(inside))
    windows.extend(packer.flush())
    assert len(windows) == len(at_once) == 2
    for ours, theirs in zip(windows, at_once, strict=True):
        assert ours.regions == theirs.regions
        assert np.array_equal(ours.samples, theirs.samples)


def test_regions_of_two_parties_keep_their_party() -> None:
    track = np.ones(10 * SAMPLE_RATE, dtype=np.float32)
    [window] = pack_regions([Region("caller", 3 * SAMPLE_RATE, track[:SAMPLE_RATE]),
                             Region("agent", 0, track[:2 * SAMPLE_RATE])])
    assert window.roles == ("agent", "caller")
    words = [(0.5, 1.0, "您好", 0.9), (2.6, 3.0, "我姓王", 0.9)]
    segments = window.split([(0.9, words, "您好我姓王")], simplify=True)
    assert [(s.speaker, s.text, s.start) for s in segments] == [("agent", "您好", 0.0), ("caller", "我姓王", 3.0)]
    assert window.speech_s == 3.0


def test_words_piled_on_one_instant_are_not_speech() -> None:
    """After a short "您好" the decoder may go on writing its prompt; the alignment piles those words up on
    one instant with no duration. Three or more such words in a row are dropped; one is kept."""
    track = Track("caller", np.ones(2 * SAMPLE_RATE, dtype=np.float32))
    [window] = pack_windows(track, [(0, int(0.6 * SAMPLE_RATE))])
    said = [(0.0, 0.34, "您", 0.01), (0.34, 0.56, "好，", 0.6)]
    piled = [(0.56, 0.56, w, 0.01) for w in ("请", "问", "您", "贵", "姓")]
    assert [s.text for s in window.split([(0.5, [*said, *piled], "")], simplify=True)] == ["您好，"]
    one = [(0.0, 0.3, "好", 0.9), (0.3, 0.3, "的", 0.9), (0.3, 0.5, "谢谢", 0.9)]
    assert [s.text for s in window.split([(0.9, one, "")], simplify=True)] == ["好的谢谢"]
