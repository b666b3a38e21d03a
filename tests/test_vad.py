"""The energy gate in front of Silero VAD: which stretches of a track are looked at, and which are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.asr.audio import SAMPLE_RATE
from pipeline.asr.vad import JOIN_S, LEAD_S, RUN_S, SpeechDetector, sound_stretches


def _track(seconds: float, hiss: float = 0.0, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * SAMPLE_RATE)) * hiss).astype(np.float32)


def _burst(track: np.ndarray, start_s: float, seconds: float, level: float = 0.2) -> None:
    a, b = int(start_s * SAMPLE_RATE), int((start_s + seconds) * SAMPLE_RATE)
    track[a:b] += (level * np.sin(2 * np.pi * 300 * np.arange(b - a) / SAMPLE_RATE)).astype(np.float32)


def test_silence_and_even_hiss_are_not_looked_at() -> None:
    assert sound_stretches(_track(60)) == []
    assert sound_stretches(_track(60, hiss=0.003)) == []
    assert sound_stretches(np.zeros(0, dtype=np.float32)) == []


def test_sound_is_looked_at_from_a_little_before_it() -> None:
    track = _track(120, hiss=0.003)
    _burst(track, 30, 2)
    _burst(track, 33, 2)  # a pause of 1 s: the same stretch
    _burst(track, 90, 3)
    stretches = sound_stretches(track)
    assert len(stretches) == 2
    (a0, a1), (b0, b1) = stretches
    assert 30 - LEAD_S - 0.1 <= a0 / SAMPLE_RATE <= 30 - LEAD_S + 0.1
    assert 35 < a1 / SAMPLE_RATE < 36.5
    assert 90 - LEAD_S - 0.1 <= b0 / SAMPLE_RATE <= 90 - LEAD_S + 0.1
    assert (b0 - a1) / SAMPLE_RATE > JOIN_S


def test_a_track_that_is_all_sound_is_one_stretch() -> None:
    track = _track(20, hiss=0.003)
    _burst(track, 0, 20)
    assert sound_stretches(track) == [(0, len(track))]


def test_speech_is_only_looked_for_inside_the_stretches() -> None:
    track = _track(30, hiss=0.003)
    _burst(track, 5, 10)
    _burst(track, 24, 2, level=0.01)  # quiet, but 6 dB over the hiss: still looked at
    stretches = sound_stretches(track)
    assert len(stretches) == 2
    detector = SpeechDetector(enabled=True, max_span_s=20.0)
    assert all(any(a <= s0 and s1 <= b for a, b in stretches) for s0, s1 in detector.spans(track))
    assert SpeechDetector(enabled=False, max_span_s=20.0).spans(track) == [(0, len(track))]


SAMPLES = Path(__file__).resolve().parents[1] / "audio_samples"


def test_the_last_sentence_of_a_call_without_pauses_is_heard() -> None:
    """A mono call with no long pause is one stretch of sound. Silero run over its 32 s in one go has
    drifted by the agent's closing sentence (28.4-32.0 s) and misses it; run afresh every RUN_S it
    does not."""
    from pipeline.asr.audio import decode
    from pipeline.settings import AudioSettings

    samples = decode(SAMPLES / "en_02_school_mono_mp3.mp3", AudioSettings()).channels[0]
    assert len(sound_stretches(samples)) == 1
    closing = (int(28.6 * SAMPLE_RATE), int(31.8 * SAMPLE_RATE))

    def covered(spans: list[tuple[int, int]]) -> float:
        inside = sum(max(0, min(b, closing[1]) - max(a, closing[0])) for a, b in spans)
        return inside / (closing[1] - closing[0])

    detector = SpeechDetector(enabled=True, max_span_s=20.0)
    assert covered(detector.silero(samples)) < 0.2
    assert covered(detector.spans(samples)) > 0.9


def test_runs_overlap_into_regions_no_longer_than_the_limit() -> None:
    """Three calls back to back (95 s of talk, no long pause): speech found in the overlap of two runs
    is one region, regions stay in order, apart, and within the limit, and the talk is covered."""
    from pipeline.asr.audio import decode
    from pipeline.settings import AudioSettings

    names = ["en_02_school_mono_mp3.mp3", "zh_02_noise_mono_ulaw.wav", "en_03_water_mono_ulaw.wav"]
    samples = np.concatenate([decode(SAMPLES / name, AudioSettings()).channels[0] for name in names])
    limit = 8.0
    spans = SpeechDetector(enabled=True, max_span_s=limit).spans(samples)
    assert spans == sorted(spans)
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))
    assert all(b - a <= limit * SAMPLE_RATE for a, b in spans)
    assert sum(b - a for a, b in spans) > 0.7 * len(samples)
    assert len(samples) > 3 * RUN_S * SAMPLE_RATE
