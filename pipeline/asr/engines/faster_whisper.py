"""The faster-whisper engine (CTranslate2) on the CPU, int8 by default, on the bundled ``base`` weights."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from pipeline.asr.audio import BLOCK_S
from pipeline.asr.cleanup import has_loop
from pipeline.asr.decoding import (
    BEST_OF,
    COMPRESSION_RATIO_THRESHOLD,
    LOGPROB_THRESHOLD,
    NO_SPEECH_THRESHOLD,
    QUICK_LOGPROB_THRESHOLD,
    SCORE_BATCH,
    TEMPERATURES,
    keep_second_decode,
    says_a_number,
    whole_character_tokens,
)
from pipeline.asr.driver import Audio, transcribe_blocks
from pipeline.asr.model_store import resolve_model_path
from pipeline.asr.prompts import domain_prompt, loop_prompt
from pipeline.asr.vad import SpeechDetector
from pipeline.asr.windows import MAX_SPAN_S, Window
from pipeline.errors import ModelError, TranscriptionError
from pipeline.settings import AsrSettings, Settings
from pipeline.transcript import Segment, Transcript

log = logging.getLogger(__name__)

# -- faster-whisper --------------------------------------------------------------------------------------
@cache
def _byte_of_symbol() -> dict[str, int]:
    """The byte-level BPE alphabet (GPT-2's, which Whisper's tokenizer uses): symbol → byte.

    Printable Latin-1 bytes stand for themselves; the others are moved up past 255, in byte order.
    """
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    moved = [b for b in range(256) if b not in kept]
    table = {chr(b): b for b in kept}
    table.update({chr(256 + i): b for i, b in enumerate(moved)})
    return table

@dataclass(frozen=True)
class _Encoded:
    output: Any  # ctranslate2.StorageView
    frames: int

def decoders_and_threads(asr: AsrSettings) -> tuple[int, int]:
    """How many windows are decoded side by side, and with how many threads each.

    Unset, two decoders share the machine's cores (windows are independent, and a decoder makes poor use
    of a second thread); a process given ``cpu_threads`` (one worker process per core, say) gets one.
    """
    cores = os.cpu_count() or 1
    decoders = asr.num_workers or (1 if asr.cpu_threads or cores < 2 else 2)
    return decoders, asr.cpu_threads or max(1, cores // decoders)

class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2) on the CPU, int8 by default.

    Each packed window is encoded once and decoded once (with Whisper's temperature fallback), then
    aligned for word timings; the encoding also scores the language. faster-whisper's own
    ``transcribe`` is not used for windows: without timestamps it seeks back to the last word and
    decodes the window's tail a second time, which costs a second encoder pass per window and can
    invent text in the silence after the last word.
    """

    def __init__(self, settings: Settings) -> None:
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"faster-whisper is not installed: {exc}") from exc
        self._asr = settings.asr
        path = resolve_model_path(settings.asr.model_path, settings.resolved_model_cache_dir)
        if path.suffix == ".pt":
            raise ModelError(f"{path} is an openai-whisper checkpoint; set CALLINTAKE_ASR__ENGINE=openai-whisper "
                             "or give a CTranslate2 Whisper directory")
        self.parallel, threads = decoders_and_threads(settings.asr)
        started = time.monotonic()
        try:
            self._model = WhisperModel(
                str(path), device="cpu", compute_type=settings.asr.compute_type,
                cpu_threads=threads, num_workers=self.parallel, local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load the speech model at {path}: {exc}") from exc
        log.info("loaded faster-whisper model %s in %.1f s (%d decoders of %d threads)", path,
                 time.monotonic() - started, self.parallel, threads)
        self._vad = SpeechDetector(enabled=settings.asr.vad, max_span_s=MAX_SPAN_S)
        self._suppressed = get_suppressed_tokens
        try:
            self._decoding = TranscriptionOptions(
                beam_size=settings.asr.beam_size, best_of=BEST_OF, patience=1.0, length_penalty=1.0,
                repetition_penalty=1.0, no_repeat_ngram_size=0, log_prob_threshold=LOGPROB_THRESHOLD,
                no_speech_threshold=NO_SPEECH_THRESHOLD, compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
                condition_on_previous_text=False, prompt_reset_on_temperature=0.5, temperatures=list(TEMPERATURES),
                initial_prompt=None, prefix=None, suppress_blank=True, suppress_tokens=None,
                without_timestamps=True, max_initial_timestamp=1.0, word_timestamps=True,
                prepend_punctuations="\"'“¿([{-", append_punctuations="\"'.。,，!！?？:：”)]}、",
                multilingual=False, max_new_tokens=None, clip_timestamps="0",
                hallucination_silence_threshold=None, hotwords=None,
            )
        except TypeError as exc:  # pragma: no cover - a faster-whisper release with other options
            raise ModelError(f"unsupported faster-whisper version: {exc}") from exc
        quick = settings.asr.quick_beam_size
        self._quick_beam = quick if 0 < quick < settings.asr.beam_size else 0
        self._per_language: dict[tuple[str, bool], tuple[Any, list[int], Any]] = {}
        self._token_bytes_cache: dict[int, bytes] = {}
        self.options: dict[str, Any] = {
            "engine": "faster-whisper",
            "model": str(path),
            "compute_type": settings.asr.compute_type,
            "cpu_threads": threads,
            "num_workers": self.parallel,
            "beam_size": settings.asr.beam_size,
            "quick_beam_size": self._quick_beam,
            "vad": settings.asr.vad,
            "languages": list(settings.asr.languages),
            "domain_prompt": settings.asr.domain_prompt,
            "word_timestamps": True,
            "condition_on_previous_text": False,
        }

    # -- the window engine ------------------------------------------------------------------------
    def speech_spans(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Speech regions of one track, in samples (VAD), or the whole track when VAD is off."""
        return self._vad.spans(samples)

    def encode(self, window: Window) -> _Encoded:
        from faster_whisper.audio import pad_or_trim

        features = self._model.feature_extractor(window.samples)
        frames = min(features.shape[-1] - 1, self._model.feature_extractor.nb_max_frames)
        try:
            return _Encoded(self._model.encode(pad_or_trim(features[:, :frames])), frames)
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc

    def language_probs(self, encoded: _Encoded) -> dict[str, float]:
        if not self._model.model.is_multilingual:
            return {"en": 1.0}
        results = self._model.model.detect_language(encoded.output)
        return {token[2:-2]: float(prob) for token, prob in results[0]}

    def _language(self, language: str, retry: bool = False) -> tuple[Any, list[int], Any]:
        """Tokenizer, prompt tokens and decoding options for a language (built once); with ``retry``,
        the prompt a looping window is decoded again with."""
        key = (language, retry)
        if key not in self._per_language:
            from faster_whisper.tokenizer import Tokenizer

            tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                                  task="transcribe", language=language)
            text = None
            if self._asr.domain_prompt:
                text = loop_prompt(language) if retry else domain_prompt(language)
            previous = tokenizer.encode(" " + text.strip()) if text else []
            prompt = self._model.get_prompt(tokenizer, previous, without_timestamps=True)
            options = replace(self._decoding, suppress_tokens=self._suppressed(tokenizer, [-1]))
            self._per_language[key] = (tokenizer, prompt, options)
        return self._per_language[key]

    def _token_bytes(self, token: int) -> bytes:
        found = self._token_bytes_cache.get(token)
        if found is None:
            table = _byte_of_symbol()
            symbol = self._model.hf_tokenizer.id_to_token(token) or ""
            found = self._token_bytes_cache[token] = bytes(table[ch] for ch in symbol if ch in table)
        return found

    def _generate(self, encoded: _Encoded, prompt: list[int], tokenizer: Any, options: Any,
                  quick: bool) -> tuple[Any, float, bool]:
        """The window's tokens, and whether they are sure: a quick narrow-beam decode when ``quick``
        (sure when likely enough and no loop), else the full beam with Whisper's temperature fallback."""
        model = self._model
        if quick:
            narrow = replace(options, beam_size=self._quick_beam, temperatures=[0.0])
            result, avg_logprob, _, ratio = model.generate_with_fallback(encoded.output, prompt, tokenizer, narrow)
            silence = result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD
            sure = avg_logprob >= QUICK_LOGPROB_THRESHOLD and ratio <= COMPRESSION_RATIO_THRESHOLD
            return result, avg_logprob, silence or sure
        result, avg_logprob, _, _ = model.generate_with_fallback(encoded.output, prompt, tokenizer, options)
        return result, avg_logprob, True

    def _decode(self, window: Window, encoded: _Encoded | None, language: str, *,
                quick: bool, retry: bool = False) -> tuple[list[Segment], bool, bool]:
        """The window's segments, whether the decode is sure, and whether it looped."""
        encoded = encoded or self.encode(window)
        tokenizer, prompt, options = self._language(language, retry)
        model = self._model
        try:
            result, avg_logprob, sure = self._generate(encoded, prompt, tokenizer, options, quick)
            if not sure:
                return [], False, False
            if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
                return [], True, False  # silence, however the window got past VAD
            tokens = whole_character_tokens([t for t in result.sequences_ids[0] if t < tokenizer.eot],
                                            self._token_bytes)
            text = tokenizer.decode(tokens)
            if not tokens or not text.strip():
                return [], True, False
            found = [[{"seek": 0, "start": 0.0, "end": encoded.frames / model.frames_per_second,
                       "tokens": tokens}]]
            model.add_word_timestamps(found, tokenizer, encoded.output, encoded.frames,
                                      options.prepend_punctuations, options.append_punctuations,
                                      last_speech_timestamp=0.0)
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        words = [(float(w["start"]), float(w["end"]), str(w["word"]), float(w["probability"]))
                 for w in found[0][0].get("words") or ()]
        segments = window.split([(float(np.exp(avg_logprob)), words, text)], simplify=language == "zh")
        return segments, True, has_loop(text)

    def score_texts(self, samples: np.ndarray, texts: Sequence[str], language: str) -> list[float]:
        """The log-probability of each text's tokens given a stretch of audio (at most one window),
        teacher forced, without the prompt. The decoder attends only to the frames that hold the audio
        (not the padding up to 30 s), which is several times cheaper and ranks texts the same."""
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        tokenizer, _, _ = self._language(language)
        model = self._model
        try:
            features = model.feature_extractor(samples)
            frames = min(features.shape[-1] - 1, model.feature_extractor.nb_max_frames)
            encoded = np.asarray(model.encode(pad_or_trim(features[:, :frames])))
            keep = max(1, min(encoded.shape[1], frames // 2))
            results = []
            for first in range(0, len(texts), SCORE_BATCH):  # a copy of the audio's encoding per text
                chunk = texts[first:first + SCORE_BATCH]
                batch = ctranslate2.StorageView.from_array(
                    np.ascontiguousarray(np.repeat(encoded[:, :keep], len(chunk), axis=0)))
                results += model.model.align(batch, tokenizer.sot_sequence, [tokenizer.encode(t) for t in chunk],
                                             min(frames, 2 * keep))
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        return [float(np.sum(np.log(np.maximum(np.asarray(r.text_token_probs, dtype=np.float64), 1e-12))))
                for r in results]

    def decode(self, window: Window, encoded: _Encoded | None, language: str) -> list[Segment]:
        """Decode a packed window with word timings, and split it back into turns.

        With a quick beam configured, the window is decoded with it first, and again with the full beam
        when that decode is unsure, repetitive, loops, or holds a number said digit by digit. A full
        decode that loops is done once more with ``loop_prompt``, and that one is kept if it does not
        loop and is sure of itself (average log-probability at least ``LOGPROB_THRESHOLD``): without
        the example the decoder can also write the prompt's vocabulary over audio it cannot place."""
        if self._quick_beam:
            segments, sure, looped = self._decode(window, encoded, language, quick=True)
            if sure and not looped and not any(says_a_number(seg.text) for seg in segments):
                return segments
        segments, _, looped = self._decode(window, encoded, language, quick=False)
        if looped and self._asr.domain_prompt:
            again, _, still = self._decode(window, encoded, language, quick=False, retry=True)
            # one decode, one confidence: every segment carries exp(avg log-prob)
            avg = float(np.log(min(seg.confidence for seg in again))) if again else None
            kept = keep_second_decode(avg_logprob=avg, looped=still)
            log.info("a window looped with the domain prompt; decoded again without its example: %s",
                     "kept" if kept else "not kept")
            if kept:
                return again
        return segments

    # -- the whole call ---------------------------------------------------------------------------
    def transcribe(self, audio: Audio, *, block_s: float = BLOCK_S) -> Transcript:
        """Transcribe a decoded call (or a streamed long recording) block by block."""
        return transcribe_blocks(self, audio, self._asr, self.options, block_s=block_s)
