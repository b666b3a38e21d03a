"""The openai-whisper engine (PyTorch, CPU, float32), on the same weights as the default engine.

It follows the same path as ``pipeline.transcribe.FasterWhisperTranscriber``: tracks from
``split_tracks``, one language for the whole call restricted to the configured ones, Silero VAD (the
ONNX model shipped inside faster-whisper, no download), speech packed into windows by
``pack_windows``, each window decoded once with word timings and split back into turns, then
``clean_segments``. Only the decoder differs, so the two engines can be compared call for call.

The model is a standard openai-whisper checkpoint. ``settings.asr.model_path`` may name one (``*.pt``,
e.g. a file a user already has); otherwise the CTranslate2 model (the bundled one, or the directory in
``model_path``) is converted once into the model cache (``openai-whisper-base.pt`` for the bundled
model) under a file lock, and reconverted only when its source changes. ``whisper.load_model`` is never
given a model name, so nothing is downloaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.audio import SAMPLE_RATE, DecodedAudio
from pipeline.convert import convert_ct2_to_openai
from pipeline.errors import ModelError, TranscriptionError
from pipeline.models import BUNDLED_NAME, resolve_model_path
from pipeline.settings import Settings
from pipeline.textclean import clean_segments
from pipeline.transcribe import LANGUAGE_WINDOWS, domain_prompt, split_tracks
from pipeline.transcript import Segment, Transcript
from pipeline.windows import MAX_SPAN_S, Track, Window, pack_windows

if TYPE_CHECKING:
    from whisper.model import Whisper

log = logging.getLogger(__name__)

#: the converted bundled model, inside the model cache
BUNDLED_CHECKPOINT = "openai-whisper-base.pt"
#: temperatures tried in turn when a decode looks like a loop or is unsure (Whisper's own schedule)
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: candidates sampled at a temperature above zero
BEST_OF = 5
#: a decode more compressible than this (gzip ratio) is a repetition loop: retry hotter
COMPRESSION_RATIO_THRESHOLD = 2.4
#: a decode with a lower mean token log-probability is unsure: retry hotter
LOGPROB_THRESHOLD = -1.0
#: an unsure decode of a window whose no-speech probability is above this is silence: no text
NO_SPEECH_THRESHOLD = 0.6


def whole_character_tokens(tokens: Sequence[int], token_bytes: Callable[[int], bytes]) -> list[int]:
    """The tokens without those that only carry part of a character which is never completed.

    Byte-level tokens can split a Han character; now and then the decoder starts a character and goes on
    with another one, leaving bytes that are not UTF-8. Such a fragment shows as U+FFFD in the text and
    stops openai-whisper's word alignment, which then drops every word after it. Tokens that complete
    their characters are kept in order.

    >>> whole_character_tokens([1, 2, 3], {1: "姓".encode(), 2: b"\\xe7", 3: "电".encode()}.__getitem__)
    [1, 3]
    """
    kept: list[int] = []
    pending: list[int] = []
    buffer = b""
    for token in tokens:
        for attempt in range(2):
            candidate = buffer + token_bytes(token)
            try:
                candidate.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and exc.end == len(candidate):
                    pending, buffer = [*pending, token], candidate  # a character still to be completed
                    break
                if attempt == 0 and pending:
                    pending, buffer = [], b""  # the started character was abandoned: drop its pieces
                    continue
                pending, buffer = [], b""  # a fragment on its own: drop it
                break
            kept.extend([*pending, token])
            pending, buffer = [], b""
            break
    return kept


def _source_fingerprint(src_dir: Path) -> dict[str, Any]:
    stat = (src_dir / "model.bin").stat()
    return {"source": str(src_dir.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def converted_checkpoint(src_dir: Path, cache_dir: Path) -> Path:
    """The openai-whisper checkpoint for a CTranslate2 directory, converting it on first use.

    The bundled model becomes ``<cache_dir>/openai-whisper-base.pt``; any other directory gets a name
    from its own name and path. A marker next to the file records the source's size and mtime, so an
    updated source is converted again. Concurrent processes serialise on a file lock; the file appears
    by atomic rename.

    >>> converted_checkpoint(Path("data/models/faster-whisper-base"), Path("data/models"))  # doctest: +SKIP
    PosixPath('data/models/openai-whisper-base.pt')
    """
    if src_dir.resolve() == (cache_dir / BUNDLED_NAME).resolve():
        dst = cache_dir / BUNDLED_CHECKPOINT
    else:
        digest = hashlib.sha256(str(src_dir.resolve()).encode()).hexdigest()[:10]
        dst = cache_dir / f"openai-whisper-{src_dir.name}-{digest}.pt"
    marker = dst.with_name(dst.name + ".source.json")
    fingerprint = _source_fingerprint(src_dir)

    def ready() -> bool:
        try:
            return dst.is_file() and json.loads(marker.read_text()) == fingerprint
        except (OSError, ValueError):
            return False

    if ready():
        return dst
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{dst.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the file ready
        if ready():
            return dst
        log.info("converting %s into the openai-whisper checkpoint %s", src_dir, dst)
        convert_ct2_to_openai(src_dir, dst)
        marker.write_text(json.dumps(fingerprint))
    return dst


def checkpoint_for(settings: Settings) -> Path:
    """The checkpoint the engine loads: ``model_path`` when it is a ``.pt`` file, else a converted one."""
    path = settings.asr.model_path
    if path is not None and path.suffix == ".pt":
        if not path.is_file():
            raise ModelError(f"configured openai-whisper checkpoint {path} does not exist")
        return path
    cache_dir = settings.resolved_model_cache_dir
    return converted_checkpoint(resolve_model_path(path, cache_dir), cache_dir)


def load_openai_checkpoint(path: Path) -> Whisper:
    """Load a standard openai-whisper checkpoint on the CPU, with the right alignment heads.

    Heads come from the checkpoint's ``alignment_heads`` entry (written by ``convert_ct2_to_openai``), or
    from openai-whisper's table when the file is named like an official model (``base.pt``,
    ``large-v3.pt``); otherwise openai-whisper's default (all heads of the upper half) is kept.

    >>> load_openai_checkpoint(Path("data/models/openai-whisper-base.pt")).dims.n_text_layer  # doctest: +SKIP
    6
    """
    import torch
    import whisper
    from whisper.model import ModelDimensions
    from whisper.model import Whisper as WhisperModel

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = WhisperModel(ModelDimensions(**checkpoint["dims"]))
        model.load_state_dict(checkpoint["model_state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError) as exc:
        raise ModelError(f"{path} is not a loadable openai-whisper checkpoint: {exc}") from exc
    heads = checkpoint.get("alignment_heads") or whisper._ALIGNMENT_HEADS.get(path.stem)
    if heads:
        try:
            model.set_alignment_heads(heads)
        except (ValueError, RuntimeError) as exc:  # a file named like an official model that is not one
            log.warning("%s: alignment heads do not fit the model (%s); using the default heads", path, exc)
    return model.eval()


class OpenAIWhisperTranscriber:
    """openai-whisper (PyTorch) on the CPU in float32, with the same windows, VAD and guards."""

    def __init__(self, settings: Settings) -> None:
        try:
            import torch
            import whisper
            from faster_whisper.vad import VadOptions, get_speech_timestamps
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"openai-whisper is not installed: {exc}") from exc
        self._asr = settings.asr
        self._whisper = whisper
        self._torch = torch
        # torch's thread pool is per process: one engine per worker process, like the model itself
        threads = settings.asr.cpu_threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        path = checkpoint_for(settings)
        started = time.monotonic()
        self._model = load_openai_checkpoint(path)
        log.info("loaded openai-whisper checkpoint %s in %.1f s (%d threads)", path,
                 time.monotonic() - started, threads)
        self._vad_options = VadOptions(
            min_silence_duration_ms=300, speech_pad_ms=200, max_speech_duration_s=MAX_SPAN_S)
        self._speech_timestamps = get_speech_timestamps
        self.options: dict[str, Any] = {
            "engine": "openai-whisper",
            "model": str(path),
            "compute_type": "float32",
            "beam_size": settings.asr.beam_size,
            "vad": settings.asr.vad,
            "languages": list(settings.asr.languages),
            "domain_prompt": settings.asr.domain_prompt,
            "word_timestamps": True,
            "condition_on_previous_text": False,
        }

    # -- language ---------------------------------------------------------------------------------
    def speech_spans(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Speech regions of one track, in samples (VAD), or the whole track when VAD is off."""
        if not self._asr.vad:
            return [(0, len(samples))] if len(samples) else []
        return [(s["start"], s["end"]) for s in self._speech_timestamps(samples, self._vad_options)]

    def _language_probs(self, samples: np.ndarray) -> dict[str, float]:
        whisper = self._whisper
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(samples.astype(np.float32)),
                                          n_mels=self._model.dims.n_mels)
        with self._torch.inference_mode():
            _, probs = self._model.detect_language(mel)
        return {str(k): float(v) for k, v in probs.items()}

    def decide_language(self, tracks: Sequence[Track]) -> tuple[str, dict[str, float]]:
        """The call's language among the configured ones, from speech windows spread over the call."""
        allowed = list(self._asr.languages)
        if len(allowed) == 1:
            return allowed[0], {allowed[0]: 1.0}
        if not self._model.is_multilingual:
            return "en", {"en": 1.0}
        pieces = [t.samples[a:b] for t in tracks for a, b in self.speech_spans(t.samples)]
        if not pieces:
            return allowed[0], {}
        speech = np.concatenate(pieces)
        window = 30 * SAMPLE_RATE
        n_windows = max(1, min(LANGUAGE_WINDOWS, round(len(speech) / window)))
        starts = np.linspace(0, max(len(speech) - window, 0), n_windows).astype(int)
        totals = dict.fromkeys(allowed, 0.0)
        for start in starts:
            for lang, prob in self._language_probs(speech[start: start + window]).items():
                if lang in totals:
                    totals[lang] += prob
        total = sum(totals.values()) or 1.0
        scores = {lang: round(value / total, 4) for lang, value in totals.items()}
        return max(scores, key=lambda k: scores[k]), scores

    # -- decoding ---------------------------------------------------------------------------------
    def _decode_once(self, mel: Any, language: str) -> Any:
        """Decode one 30-second mel segment, falling back to higher temperatures like Whisper does.

        Returns the ``DecodingResult``, or None when the segment is silence (no-speech probability
        high and the text unsure)."""
        from whisper.decoding import DecodingOptions

        prompt = domain_prompt(language) if self._asr.domain_prompt else None
        result = None
        for temperature in TEMPERATURES:
            greedy = temperature == 0.0
            options = DecodingOptions(
                task="transcribe", language=language, temperature=temperature,
                beam_size=self._asr.beam_size if greedy else None, best_of=None if greedy else BEST_OF,
                prompt=prompt, without_timestamps=True, fp16=False,
            )
            result = self._model.decode(mel, options)
            unsure = result.avg_logprob < LOGPROB_THRESHOLD
            if result.no_speech_prob > NO_SPEECH_THRESHOLD and unsure:
                return None
            if result.compression_ratio <= COMPRESSION_RATIO_THRESHOLD and not unsure:
                break
        return result

    def _decode_window(self, window: Window, language: str) -> list[Segment]:
        """Decode a packed window exactly once (no re-seeking into its tail), with word timings."""
        from whisper.audio import HOP_LENGTH, N_FRAMES, N_SAMPLES
        from whisper.timing import add_word_timestamps
        from whisper.tokenizer import get_tokenizer

        whisper, model = self._whisper, self._model
        try:
            with self._torch.inference_mode():
                mel = whisper.log_mel_spectrogram(window.samples, n_mels=model.dims.n_mels, padding=N_SAMPLES)
                frames = min(mel.shape[-1] - N_FRAMES, N_FRAMES)
                segment_mel = whisper.pad_or_trim(mel[:, :frames], N_FRAMES)
                result = self._decode_once(segment_mel, language)
                tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                                          language=language, task="transcribe")
                if result is None:
                    return []
                text_tokens = [t for t in result.tokens if t < tokenizer.eot]
                tokens = whole_character_tokens(text_tokens, tokenizer.encoding.decode_single_token_bytes)
                if not tokens:
                    return []
                segment: dict[str, Any] = {"seek": 0, "start": 0.0, "end": frames * HOP_LENGTH / SAMPLE_RATE,
                                           "text": tokenizer.decode(tokens), "tokens": tokens}
                add_word_timestamps(segments=[segment], model=model, tokenizer=tokenizer, mel=segment_mel,
                                    num_frames=frames, last_speech_timestamp=0.0)
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        words = [(float(w["start"]), float(w["end"]), str(w["word"]), float(w["probability"]))
                 for w in segment.get("words") or ()]
        return window.split([(float(np.exp(result.avg_logprob)), words, str(segment["text"]))],
                            role=window.role, simplify=language == "zh")

    def transcribe(self, audio: DecodedAudio) -> Transcript:
        """Transcribe a decoded call: per-party tracks, one language, speech windows, cleaned turns."""
        tracks = split_tracks(audio)
        language, scores = self.decide_language(tracks)
        segments: list[Segment] = []
        for track in tracks:
            for window in pack_windows(track, self.speech_spans(track.samples)):
                segments.extend(clean_segments(self._decode_window(window, language), language=language))
        options = {**self.options, "language": language, "language_scores": scores,
                   "tracks": [t.role for t in tracks]}
        return Transcript.from_segments(language, segments, duration=audio.duration_s, options=options)
