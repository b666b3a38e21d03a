"""The openai-whisper engine (PyTorch, CPU, float32), on the same weights as the default engine.

It follows the same path as ``pipeline.asr.engines.faster_whisper.FasterWhisperTranscriber`` (``transcribe_blocks``):
blocks, tracks, one language for the whole call restricted to the configured ones, Silero VAD (the
ONNX model shipped inside faster-whisper, no download), speech packed into windows, each window encoded
once (the encoding also scores the language), decoded once with word timings and split back into
turns, then ``clean_segments``. Only the model differs, so the two engines can be compared call for
call.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.asr.audio import BLOCK_S, SAMPLE_RATE
from pipeline.asr.cleanup import has_loop
from pipeline.asr.convert import convert_ct2_to_openai
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
from pipeline.asr.model_store import BUNDLED_NAME, resolve_model_path
from pipeline.asr.prompts import domain_prompt, loop_prompt
from pipeline.asr.vad import SpeechDetector
from pipeline.asr.windows import MAX_SPAN_S, Window
from pipeline.errors import ModelError, TranscriptionError
from pipeline.settings import Settings
from pipeline.transcript import Segment, Transcript

if TYPE_CHECKING:
    from whisper.model import Whisper

log = logging.getLogger(__name__)

#: the converted bundled model, inside the model cache
BUNDLED_CHECKPOINT = "openai-whisper-base.pt"


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
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"openai-whisper is not installed: {exc}") from exc
        self._asr = settings.asr
        self._whisper = whisper
        self._torch = torch
        # torch's thread pool is per process: one engine per worker process, like the model itself
        threads = settings.asr.cpu_threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        self.parallel = 1  # torch already spreads one window over every thread
        path = checkpoint_for(settings)
        started = time.monotonic()
        self._model = load_openai_checkpoint(path)
        log.info("loaded openai-whisper checkpoint %s in %.1f s (%d threads)", path,
                 time.monotonic() - started, threads)
        self._vad = SpeechDetector(enabled=settings.asr.vad, max_span_s=MAX_SPAN_S)
        self.options: dict[str, Any] = {
            "engine": "openai-whisper",
            "model": str(path),
            "compute_type": "float32",
            "cpu_threads": threads,
            "beam_size": settings.asr.beam_size,
            "quick_beam_size": settings.asr.quick_beam_size,
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
        """The window's 30-second mel segment and its encoder output."""
        from whisper.audio import N_FRAMES, N_SAMPLES

        whisper, model = self._whisper, self._model
        try:
            with self._torch.inference_mode():
                mel = whisper.log_mel_spectrogram(window.samples.astype(np.float32), n_mels=model.dims.n_mels,
                                                  padding=N_SAMPLES)
                frames = min(mel.shape[-1] - N_FRAMES, N_FRAMES)
                segment_mel = whisper.pad_or_trim(mel[:, :frames], N_FRAMES)
                features = model.embed_audio(segment_mel.unsqueeze(0))[0]
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        return _Encoded(mel=segment_mel, features=features, frames=frames)

    def language_probs(self, encoded: _Encoded) -> dict[str, float]:
        if not self._model.is_multilingual:
            return {"en": 1.0}
        with self._torch.inference_mode():
            _, probs = self._model.detect_language(encoded.features)
        return {str(k): float(v) for k, v in probs.items()}

    def _decode_once(self, features: Any, language: str, retry: bool = False) -> Any:
        """Decode one encoded 30-second segment, falling back to higher temperatures like Whisper does;
        a ``retry`` (the window looped) uses ``loop_prompt`` and the full beam at once.

        Returns the ``DecodingResult``, or None when the segment is silence (no-speech probability
        high and the text unsure)."""
        from whisper.decoding import DecodingOptions

        prompt = None
        if self._asr.domain_prompt:
            prompt = loop_prompt(language) if retry else domain_prompt(language)
        beam = self._asr.beam_size
        quick = beam if retry else self._asr.quick_beam_size or beam
        # a quick narrow beam first (kept when sure of itself), then the full beam, then hotter samples
        schedule: list[tuple[float, int | None]] = [(0.0, quick), (0.0, beam)] if quick < beam else [(0.0, beam)]
        schedule += [(t, None) for t in TEMPERATURES if t > 0.0]
        result = None
        for temperature, beam_size in schedule:
            options = DecodingOptions(
                task="transcribe", language=language, temperature=temperature, beam_size=beam_size,
                best_of=None if beam_size else BEST_OF, prompt=prompt, without_timestamps=True, fp16=False,
            )
            result = self._model.decode(features, options)
            unsure = result.avg_logprob < LOGPROB_THRESHOLD
            if result.no_speech_prob > NO_SPEECH_THRESHOLD and unsure:
                return None
            if beam_size is not None and beam_size < beam:
                unsure = result.avg_logprob < QUICK_LOGPROB_THRESHOLD or says_a_number(result.text)
            if result.compression_ratio <= COMPRESSION_RATIO_THRESHOLD and not unsure:
                break
        return result

    def score_texts(self, samples: np.ndarray, texts: Sequence[str], language: str) -> list[float]:
        """The log-probability of each text's tokens given a stretch of audio (at most one window),
        teacher forced, without the prompt; the decoder attends only to the frames that hold audio."""
        from whisper.audio import N_FRAMES, N_SAMPLES
        from whisper.tokenizer import get_tokenizer

        whisper, model, torch = self._whisper, self._model, self._torch
        tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                                  language=language, task="transcribe")
        start = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        sequences = [start + tokenizer.encode(text) for text in texts]
        width = max(len(seq) for seq in sequences)
        try:
            with torch.inference_mode():
                mel = whisper.log_mel_spectrogram(samples.astype(np.float32), n_mels=model.dims.n_mels,
                                                  padding=N_SAMPLES)
                frames = min(mel.shape[-1] - N_FRAMES, N_FRAMES)
                features = model.embed_audio(whisper.pad_or_trim(mel[:, :frames], N_FRAMES).unsqueeze(0))
                features = features[:, :max(1, frames // 2)]
                scores: list[float] = []
                for first in range(0, len(sequences), SCORE_BATCH):  # the logits over the vocabulary
                    chunk = sequences[first:first + SCORE_BATCH]      # are large: a few texts at a time
                    tokens = torch.full((len(chunk), width), tokenizer.eot, dtype=torch.long)
                    for i, seq in enumerate(chunk):
                        tokens[i, :len(seq)] = torch.tensor(seq)
                    logits = model.decoder(tokens, features.expand(len(chunk), -1, -1))
                    logprobs = torch.log_softmax(logits.float(), dim=-1)
                    scores += [float(sum(logprobs[i, j - 1, seq[j]] for j in range(len(start), len(seq))))
                               for i, seq in enumerate(chunk)]
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        return scores

    def decode(self, window: Window, encoded: _Encoded | None, language: str) -> list[Segment]:
        """Decode a packed window exactly once (no re-seeking into its tail), with word timings; a
        decode that loops is done once more with ``loop_prompt``, and that one kept when it does not
        loop and is sure of itself (as in ``FasterWhisperTranscriber.decode``)."""
        from whisper.audio import HOP_LENGTH
        from whisper.timing import add_word_timestamps
        from whisper.tokenizer import get_tokenizer

        encoded = encoded or self.encode(window)
        model = self._model
        try:
            with self._torch.inference_mode():
                result = self._decode_once(encoded.features, language)
                if result is not None and has_loop(result.text) and self._asr.domain_prompt:
                    again = self._decode_once(encoded.features, language, retry=True)
                    kept = keep_second_decode(avg_logprob=again.avg_logprob if again is not None else None,
                                              looped=again is not None and has_loop(again.text))
                    log.info("a window looped with the domain prompt; decoded again without its example: %s",
                             "kept" if kept else "not kept")
                    result = again if kept else result
                if result is None:
                    return []
                tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                                          language=language, task="transcribe")
                text_tokens = [t for t in result.tokens if t < tokenizer.eot]
                tokens = whole_character_tokens(text_tokens, tokenizer.encoding.decode_single_token_bytes)
                if not tokens:
                    return []
                segment: dict[str, Any] = {
                    "seek": 0, "start": 0.0, "end": encoded.frames * HOP_LENGTH / SAMPLE_RATE,
                    "text": tokenizer.decode(tokens), "tokens": tokens}
                add_word_timestamps(segments=[segment], model=model, tokenizer=tokenizer, mel=encoded.mel,
                                    num_frames=encoded.frames, last_speech_timestamp=0.0)
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        words = [(float(w["start"]), float(w["end"]), str(w["word"]), float(w["probability"]))
                 for w in segment.get("words") or ()]
        return window.split([(float(np.exp(result.avg_logprob)), words, str(segment["text"]))],
                            simplify=language == "zh")

    def transcribe(self, audio: Audio, *, block_s: float = BLOCK_S) -> Transcript:
        """Transcribe a decoded call (or a streamed long recording): the same path as the default engine."""
        return transcribe_blocks(self, audio, self._asr, self.options, block_s=block_s)


@dataclass(frozen=True)
class _Encoded:
    mel: Any  # torch.Tensor (n_mels, 3000)
    features: Any  # torch.Tensor (n_audio_ctx, n_audio_state)
    frames: int
