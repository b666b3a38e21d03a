"""Voice activity detection: where in a track someone speaks.

Silero VAD (the ONNX model shipped inside faster-whisper, no download) finds speech, but it is a
recurrent model whose state drifts over a long stretch without speech: after ten seconds of silence or
line hiss the probabilities it gives a quiet voice fall by a third to a half, and after a few minutes the
first turn of a party who has been listening can be missed whole (on a stereo call, each party's channel is
silent while the other talks). It drifts in long continuous sound too: on a 30-second mono call without a
long pause it missed the agent's last sentence, which it finds at once when run on those seconds alone.
So Silero does not run over a track in one go: a cheap energy gate finds the stretches that hold any
sound above the track's own floor, and Silero runs afresh on each, in runs of at most ``RUN_S`` seconds
that overlap by a lead-in, each starting a little before its first sound. Stretches of floor-level hiss
or digital silence are not looked at at all, which also makes a mostly silent recording cheap. The gate
is generous (6 dB over the floor, or any sound above -40 dBFS): it only keeps Silero off long nothing.
"""

from __future__ import annotations

import numpy as np

from pipeline.asr.audio import SAMPLE_RATE

#: Silero looks at frames of this many samples; the energy gate uses the same frames
FRAME = 512
#: a frame is sound when its RMS is this many times the track's floor (+6 dB), or above LOUD_RMS
#: (-40 dBFS) whatever the floor: a track of speech or noise without a pause is looked at whole
LOUD_RATIO = 2.0
LOUD_RMS = 0.01
#: the floor is this percentile of the frames' RMS, and never below FLOOR_MIN (digital silence)
FLOOR_PERCENTILE = 10
FLOOR_MIN = 1e-4
#: Silero starts this long before a stretch's first sound (it needs some lead-in), and runs on after
LEAD_S = 1.5
TAIL_S = 1.0
#: sound stretches closer than this are looked at together (a turn with its pauses)
JOIN_S = 4.0
#: Silero runs afresh at least this often in a long stretch of sound (each run starts LEAD_S early)
RUN_S = 10.0
#: Silero's own settings: a pause of 300 ms ends a region, 200 ms of padding each side, and a region
#: longer than MAX_SPAN_S is cut at its quietest point (windows.MAX_SPAN_S)
MIN_SILENCE_MS = 300
SPEECH_PAD_MS = 200


def sound_stretches(samples: np.ndarray) -> list[tuple[int, int]]:
    """Stretches of ``samples`` (start, end) that hold sound above the track's floor, with lead-in and
    run-on, joined when close; empty for a track of silence or even hiss."""
    frames = len(samples) // FRAME
    if frames == 0:
        return [(0, len(samples))] if len(samples) else []
    energy = np.sqrt(np.mean(np.square(samples[: frames * FRAME].reshape(frames, FRAME), dtype=np.float64), axis=1))
    floor = max(float(np.percentile(energy, FLOOR_PERCENTILE)), FLOOR_MIN)
    loud = np.flatnonzero((energy > LOUD_RATIO * floor) | (energy > LOUD_RMS))
    if len(loud) == 0:
        return []
    lead, tail, join = (int(s * SAMPLE_RATE / FRAME) for s in (LEAD_S, TAIL_S, JOIN_S))
    stretches: list[tuple[int, int]] = []
    start = prev = int(loud[0])
    for frame in loud[1:]:
        if frame - prev > join:
            stretches.append((start, prev))
            start = int(frame)
        prev = int(frame)
    stretches.append((start, prev))
    return [(max(0, (a - lead) * FRAME), min(len(samples), (b + 1 + tail) * FRAME)) for a, b in stretches]


class SpeechDetector:
    """Speech regions of a track, in samples, or the whole track when detection is off."""

    def __init__(self, *, enabled: bool, max_span_s: float) -> None:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        self.enabled = enabled
        self._max_span = int(max_span_s * SAMPLE_RATE)
        self._options = VadOptions(min_silence_duration_ms=MIN_SILENCE_MS, speech_pad_ms=SPEECH_PAD_MS,
                                   max_speech_duration_s=max_span_s)
        self._silero = get_speech_timestamps

    def silero(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Silero over ``samples`` in one run, from a fresh state (what the gate avoids on long tracks)."""
        return [(s["start"], s["end"]) for s in self._silero(samples, self._options)]

    def spans(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """(start, end) sample pairs of speech, in order, not overlapping."""
        if not self.enabled:
            return [(0, len(samples))] if len(samples) else []
        found: list[tuple[int, int]] = []
        run, lead = int(RUN_S * SAMPLE_RATE), int(LEAD_S * SAMPLE_RATE)
        for a, b in sound_stretches(samples):
            for begin in range(a, b, run):
                lo, hi = max(a, begin - lead), min(b, begin + run)
                found.extend((lo + start, lo + end) for start, end in self.silero(samples[lo:hi]))
        spans: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if spans and start <= spans[-1][1]:  # found twice where runs overlap, or padding met: one region
                if end <= spans[-1][1]:
                    continue
                if end - spans[-1][0] <= self._max_span:
                    spans[-1] = (spans[-1][0], end)
                    continue
                start = spans[-1][1]  # too long for one region: the rest follows it
            spans.append((start, end))
        return spans
