"""Speech to text: engines behind one small protocol, and what every engine's output goes through.

``load_transcriber(settings)`` loads the configured engine once (seconds); ``transcribe(audio)`` then
turns a ``DecodedAudio`` into a ``Transcript``:

* stereo calls are transcribed one channel at a time with the channel's role (agent / caller) and merged
  by time into one dialogue; a channel that is silent or a copy of the other is folded into a mono track;
* the language is decided once for the whole call, from speech spread over the call and restricted to the
  configured languages, then fixed for every channel (short turns alone often look like another language);
* voice activity detection skips silence, so a channel that is quiet while the other party talks costs
  nothing to decode;
* Mandarin gets an initial prompt with hotline and Beijing place vocabulary, and Simplified output;
* known Whisper failure modes are filtered (see ``pipeline.textclean``).

Each engine records the options it used in ``Transcript.options``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, Protocol

import numpy as np

from pipeline.audio import SAMPLE_RATE, DecodedAudio
from pipeline.errors import ModelError, TranscriptionError
from pipeline.models import resolve_model_path
from pipeline.settings import Settings
from pipeline.textclean import clean_segments
from pipeline.transcript import Segment, Transcript
from pipeline.windows import MAX_SPAN_S, Track, Window, pack_windows

log = logging.getLogger(__name__)

#: a channel whose RMS is below this fraction of the loudest channel's carries no party of its own
SILENT_CHANNEL_RATIO = 0.02
#: channels correlated above this are the same signal (a mono call stored as stereo)
DUPLICATE_CHANNEL_CORR = 0.97
#: language detection looks at up to this many 30-second windows of speech, spread over the call
LANGUAGE_WINDOWS = 4


class Transcriber(Protocol):
    """What the pipeline needs of a speech engine."""

    options: Mapping[str, Any]

    def transcribe(self, audio: DecodedAudio) -> Transcript: ...


@cache
def domain_prompt(language: str) -> str | None:
    """The initial prompt for a language (hotline and place vocabulary), or None."""
    try:
        return resources.files("pipeline.prompts").joinpath(f"{language}.txt").read_text("utf-8").strip()
    except FileNotFoundError:
        return None


def split_tracks(audio: DecodedAudio) -> list[Track]:
    """The tracks to decode: one per party for a true two-party stereo call, else one mixed track."""
    if len(audio.channels) == 1:
        return [Track("mixed", audio.channels[0])]
    rms = [float(np.sqrt(np.mean(np.square(ch, dtype=np.float64)))) if len(ch) else 0.0
           for ch in audio.channels]
    loudest = max(rms)
    if loudest == 0.0:
        return [Track("mixed", audio.mixdown())]
    live = [i for i, value in enumerate(rms) if value >= SILENT_CHANNEL_RATIO * loudest]
    if len(live) == 1:
        return [Track("mixed", audio.channels[live[0]])]
    a, b = audio.channels
    corr = float(np.corrcoef(a[: SAMPLE_RATE * 60], b[: SAMPLE_RATE * 60])[0, 1]) if len(a) > 1 else 1.0
    if corr > DUPLICATE_CHANNEL_CORR:
        return [Track("mixed", audio.mixdown())]
    return [Track(role, ch) for role, ch in zip(audio.roles, audio.channels, strict=True)]


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2) on the CPU, int8 by default."""

    def __init__(self, settings: Settings) -> None:
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.vad import VadOptions, get_speech_timestamps
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"faster-whisper is not installed: {exc}") from exc
        self._asr = settings.asr
        path = resolve_model_path(settings.asr.model_path, settings.resolved_model_cache_dir)
        started = time.monotonic()
        try:
            self._model = WhisperModel(
                str(path), device="cpu", compute_type=settings.asr.compute_type,
                cpu_threads=settings.asr.cpu_threads, local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load the speech model at {path}: {exc}") from exc
        log.info("loaded faster-whisper model %s in %.1f s", path, time.monotonic() - started)
        self._vad_options = VadOptions(
            min_silence_duration_ms=300, speech_pad_ms=200, max_speech_duration_s=MAX_SPAN_S)
        self._speech_timestamps = get_speech_timestamps
        self.options: dict[str, Any] = {
            "engine": "faster-whisper",
            "model": str(path),
            "compute_type": settings.asr.compute_type,
            "beam_size": settings.asr.beam_size,
            "vad": settings.asr.vad,
            "languages": list(settings.asr.languages),
            "domain_prompt": settings.asr.domain_prompt,
            "word_timestamps": True,
            "condition_on_previous_text": False,
        }

    # -- language ---------------------------------------------------------------------------------
    def _speech(self, samples: np.ndarray) -> np.ndarray:
        if not self._asr.vad:
            return samples
        spans = self._speech_timestamps(samples, self._vad_options)
        if not spans:
            return samples[:0]
        return np.concatenate([samples[s["start"]: s["end"]] for s in spans])

    def decide_language(self, tracks: Sequence[Track]) -> tuple[str, dict[str, float]]:
        """The call's language among the configured ones, from speech windows spread over the call."""
        allowed = list(self._asr.languages)
        if len(allowed) == 1:
            return allowed[0], {allowed[0]: 1.0}
        speech = np.concatenate([self._speech(t.samples) for t in tracks])
        window = 30 * SAMPLE_RATE
        if len(speech) == 0:
            return allowed[0], {}
        n_windows = max(1, min(LANGUAGE_WINDOWS, round(len(speech) / window)))
        starts = np.linspace(0, max(len(speech) - window, 0), n_windows).astype(int)
        totals = dict.fromkeys(allowed, 0.0)
        for start in starts:
            _, _, probs = self._model.detect_language(audio=speech[start: start + window])
            for lang, prob in probs:
                if lang in totals:
                    totals[lang] += prob
        total = sum(totals.values()) or 1.0
        scores = {lang: round(value / total, 4) for lang, value in totals.items()}
        return max(scores, key=lambda k: scores[k]), scores

    # -- decoding ---------------------------------------------------------------------------------
    def speech_spans(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Speech regions of one track, in samples (VAD), or the whole track when VAD is off."""
        if not self._asr.vad:
            return [(0, len(samples))] if len(samples) else []
        return [(s["start"], s["end"]) for s in self._speech_timestamps(samples, self._vad_options)]

    def _decode_window(self, window: Window, language: str) -> list[Segment]:
        prompt = domain_prompt(language) if self._asr.domain_prompt else None
        try:
            segments, _info = self._model.transcribe(
                window.samples,
                language=language,
                beam_size=self._asr.beam_size,
                vad_filter=False,
                without_timestamps=True,
                word_timestamps=True,
                initial_prompt=prompt,
                condition_on_previous_text=False,
                compression_ratio_threshold=2.4,
                log_prob_threshold=-1.0,
                no_speech_threshold=0.6,
            )
            raw = list(segments)
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        return window.split([
            (float(np.exp(seg.avg_logprob)),
             [(float(w.start), float(w.end), w.word, float(w.probability)) for w in (seg.words or ())],
             seg.text)
            for seg in raw
        ], role=window.role, simplify=language == "zh")

    def transcribe(self, audio: DecodedAudio) -> Transcript:
        tracks = split_tracks(audio)
        language, scores = self.decide_language(tracks)
        segments: list[Segment] = []
        for track in tracks:
            for window in pack_windows(track, self.speech_spans(track.samples)):
                segments.extend(clean_segments(self._decode_window(window, language), language=language))
        options = {**self.options, "language": language, "language_scores": scores,
                   "tracks": [t.role for t in tracks]}
        return Transcript.from_segments(language, segments, duration=audio.duration_s, options=options)


def load_transcriber(settings: Settings) -> Transcriber:
    """Load the configured engine (once per process: this takes seconds)."""
    if settings.asr.engine == "faster-whisper":
        return FasterWhisperTranscriber(settings)
    raise ModelError(f"unknown transcription engine {settings.asr.engine!r}")
