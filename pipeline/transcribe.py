"""Speech to text: engines behind one small protocol, and what every engine's output goes through.

``load_transcriber(settings)`` loads the configured engine once (seconds); ``transcribe(audio)`` then
turns a decoded recording (``DecodedAudio``, or ``StreamedAudio`` for a long one) into a ``Transcript``.
Both engines share the path below (``transcribe_blocks``) and differ only in how a window is encoded,
how its language is scored and how it is decoded:

* the recording is taken in blocks of ten minutes (a call of a few minutes is one block); a long one
  is never held whole, and what a block leaves unfinished at its end (speech running into the next
  block) is carried over, so that no word is cut in two;
* stereo calls keep the agent's and the caller's channels apart; a channel that is silent or a copy of
  the other is folded into one mono track (decided on the first block, which is the whole of any
  ordinary call);
* voice activity detection (``pipeline.vad``) skips silence, so a channel that is quiet while the other
  party talks costs nothing to decode; each track's speech is packed into windows of up to 28 s (a
  window open at a block's end goes on in the next block), each encoded and decoded once, several side
  by side (``pipeline.windows``);
* the language is decided once, from up to eight windows spread over the call (over the first blocks of
  a long recording), each weighed by its seconds of speech, among the configured languages only, then
  fixed for every window: a short "hello" before a Mandarin call does not make it English, a short
  turn alone cannot come out as a language the hotline does not take, and a call too short to tell is
  taken to be in the first configured language (the hotline's own);
* each window is decoded with the full beam and Whisper's temperature fallback; for throughput, a
  narrower first beam can be configured (``quick_beam_size``), and then only a window whose decode comes
  out unsure or repetitive, or holds a number said digit by digit (where a narrow beam drops one of two
  equal digits), is decoded again with the full beam;
* Mandarin gets an initial prompt with hotline and Beijing place vocabulary, and Simplified output;
* known Whisper failure modes are filtered (see ``pipeline.textclean``).

Each engine records the options it used in ``Transcript.options``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, Protocol

import numpy as np

from pipeline.audio import BLOCK_S, SAMPLE_RATE, AudioBlock, DecodedAudio, StreamedAudio
from pipeline.errors import ModelError, TranscriptionError
from pipeline.models import resolve_model_path
from pipeline.numbers_heard import restore_numbers
from pipeline.settings import AsrSettings, Settings
from pipeline.textclean import clean_segments, has_loop
from pipeline.transcript import Segment, Transcript
from pipeline.vad import SpeechDetector
from pipeline.windows import MAX_SPAN_S, WINDOW_S, Region, Track, Window, WindowPacker

log = logging.getLogger(__name__)

#: a channel whose RMS is below this fraction of the loudest channel's carries no party of its own
SILENT_CHANNEL_RATIO = 0.02
#: channels correlated above this are the same signal (a mono call stored as stereo)
DUPLICATE_CHANNEL_CORR = 0.97
#: the language is scored on up to this many windows, spread over the speech it is decided on
LANGUAGE_WINDOWS = 8
#: the first configured language (the hotline's own) starts the vote with this many seconds of speech, so
#: that a call too short to tell (a lone "喂？") is taken to be in it, not in whatever a second suggests
LANGUAGE_PRIOR_S = 1.0
#: a long recording's language is decided once this much speech is packed (or after LANGUAGE_BLOCKS)
LANGUAGE_SPEECH_S = 120.0
LANGUAGE_BLOCKS = 3
#: VAD looks at a track this many seconds at a time (its working memory is some ten times the input)
VAD_PIECE_S = 120.0
#: speech that ends closer than this to a piece's end may go on in the next piece: it is carried over
CARRY_TAIL_S = 1.0
#: never carry more than this into the next block (VAD cuts speech at MAX_SPAN_S anyway)
MAX_CARRY_S = 3 * MAX_SPAN_S
#: Whisper's thresholds: a decode more compressible than this is a loop, one less likely than this unsure
COMPRESSION_RATIO_THRESHOLD = 2.4
LOGPROB_THRESHOLD = -1.0
#: an unsure decode of a window whose no-speech probability is above this is silence: no text
NO_SPEECH_THRESHOLD = 0.6
#: a quick (narrow-beam) decode less likely than this, per token, is done again with the full beam
QUICK_LOGPROB_THRESHOLD = -0.5
#: six or more digits in a row (spoken or written, commas and spaces between groups allowed)
NUMBER_RUN = re.compile(r"(?:[0-9０-９零〇幺一二三四五六七八九两][\s，,、.\-]*){6,}")
#: temperatures tried in turn when a decode looks like a loop or is unsure (Whisper's own schedule)
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: candidates sampled at a temperature above zero
BEST_OF = 5
#: texts scored against one stretch of audio at a time (``score_texts``): each needs its own copy of the
#: encoded audio (up to 3 MB) and of the decoder's output over the vocabulary, so memory stays bounded
#: when a phone number has a hundred candidates in two spellings
SCORE_BATCH = 16

Audio = DecodedAudio | StreamedAudio


class Transcriber(Protocol):
    """What the pipeline needs of a speech engine."""

    @property
    def options(self) -> Mapping[str, Any]: ...

    def transcribe(self, audio: Audio) -> Transcript: ...


class WindowEngine(Protocol):
    """What an engine supplies to ``transcribe_blocks``: VAD, and encoding, language scoring and
    decoding of one packed window. ``encode``'s result is handed back to ``language_probs`` and
    ``decode``, so a window scored for the language is not encoded twice. Up to ``parallel`` windows
    are encoded and decoded at the same time, from as many threads."""

    parallel: int

    def speech_spans(self, samples: np.ndarray) -> list[tuple[int, int]]: ...

    def encode(self, window: Window) -> Any: ...

    def language_probs(self, encoded: Any) -> Mapping[str, float]: ...

    def decode(self, window: Window, encoded: Any | None, language: str) -> list[Segment]: ...

    def score_texts(self, samples: np.ndarray, texts: Sequence[str], language: str) -> list[float]: ...


@cache
def _prompt_lines(language: str) -> tuple[str, ...]:
    try:
        text = resources.files("pipeline.prompts").joinpath(f"{language}.txt").read_text("utf-8")
    except FileNotFoundError:
        return ()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def domain_prompt(language: str) -> str | None:
    """The initial prompt for a language (hotline and place vocabulary), or None.

    A prompt file holds the vocabulary on its first line and, optionally, an example exchange on the
    next ones (the agent asking a name, a caller answering with a number in Chinese numerals)."""
    lines = _prompt_lines(language)
    return ("" if language in ("zh", "ja") else " ").join(lines) or None


def loop_prompt(language: str) -> str | None:
    """The prompt a window is decoded again with when its first decode loops: the vocabulary alone.

    The example exchange can itself start a loop: on a caller's short "我姓宋" the decoder went on
    with the example's "我姓张？" over and over and lost the number that followed. Without an example
    (English has none) the window is decoded without a prompt."""
    lines = _prompt_lines(language)
    return lines[0] if len(lines) > 1 else None


def whole_character_tokens(tokens: Sequence[int], token_bytes: Callable[[int], bytes]) -> list[int]:
    """The tokens without those that only carry part of a character which is never completed.

    Byte-level tokens can split a Han character; now and then the decoder starts a character and goes on
    with another one, leaving bytes that are not UTF-8. Such a fragment shows as U+FFFD in the text and
    stops the word alignment of both engines, which then drops every word after it. Tokens that
    complete their characters are kept in order.

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


# -- tracks ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Which signals of a recording are transcribed, and as whose speech.

    ``parties``: each channel on its own with its role; ``channel``: only channel ``channel``, as one
    mixed speaker (the other is silent); ``mixdown``: the channels averaged, as one mixed speaker.
    """

    kind: str
    roles: tuple[str, ...]
    channel: int = 0

    def tracks(self, channels: Sequence[np.ndarray], offset: int = 0) -> list[Track]:
        if self.kind == "parties":
            return [Track(role, ch, offset) for role, ch in zip(self.roles, channels, strict=True)]
        if self.kind == "channel":
            return [Track("mixed", channels[self.channel], offset)]
        if len(channels) == 1:
            return [Track("mixed", channels[0], offset)]
        mixed = np.add(channels[0], channels[1], dtype=np.float32)
        mixed *= 0.5
        return [Track("mixed", mixed, offset)]

    @property
    def track_roles(self) -> list[str]:
        return list(self.roles) if self.kind == "parties" else ["mixed"]


def _rms(samples: np.ndarray, step: int = 1 << 20) -> float:
    """Root mean square, summed in float64 a megasample at a time (no float64 copy of a long block)."""
    if not len(samples):
        return 0.0
    total = sum(float(np.dot(piece, piece)) for piece in
                (samples[i: i + step].astype(np.float64) for i in range(0, len(samples), step)))
    return (total / len(samples)) ** 0.5


def choose_layout(channels: Sequence[np.ndarray], roles: Sequence[str]) -> Layout:
    """One track per party for a true two-party stereo call, else one mixed track.

    A channel below ``SILENT_CHANNEL_RATIO`` of the loudest one's RMS carries no party; two channels
    correlated above ``DUPLICATE_CHANNEL_CORR`` over their first minute are one signal stored twice.
    """
    roles = tuple(roles)
    if len(channels) == 1:
        return Layout("mixdown", roles)
    rms = [_rms(ch) for ch in channels]
    loudest = max(rms)
    if loudest == 0.0:
        return Layout("mixdown", roles)
    live = [i for i, value in enumerate(rms) if value >= SILENT_CHANNEL_RATIO * loudest]
    if len(live) == 1:
        return Layout("channel", roles, channel=live[0])
    a, b = channels
    corr = float(np.corrcoef(a[: SAMPLE_RATE * 60], b[: SAMPLE_RATE * 60])[0, 1]) if len(a) > 1 else 1.0
    if corr > DUPLICATE_CHANNEL_CORR:
        return Layout("mixdown", roles)
    return Layout("parties", roles)


def split_tracks(audio: DecodedAudio) -> list[Track]:
    """The tracks to decode: one per party for a true two-party stereo call, else one mixed track."""
    return choose_layout(audio.channels, audio.roles).tracks(audio.channels)


# -- the shared path -------------------------------------------------------------------------------------
@dataclass
class _Carry:
    """Samples of a track held back at a block's end, to be prepended to its next block."""

    start: int
    samples: np.ndarray


def speech_regions(
    engine: WindowEngine, track: Track, carried: dict[str, _Carry], *, last: bool
) -> list[Region]:
    """The speech regions of one block of a track, in call samples.

    VAD runs over the block in pieces of ``VAD_PIECE_S`` (a call of two minutes is one piece), so that
    its working memory stays small. What was carried from the previous piece is prepended first.
    Unless the piece is the recording's last, speech that reaches the final ``CARRY_TAIL_S`` of the
    piece (and the silence after the last finished region) is held back in ``carried`` for the next
    piece instead of being cut.
    """
    step = int(VAD_PIECE_S * SAMPLE_RATE)
    total = len(track.samples)
    regions: list[Region] = []
    for begin in range(0, total, step):
        piece = Track(track.role, track.samples[begin: begin + step], track.offset + begin)
        regions.extend(_piece_regions(engine, piece, carried, last=last and begin + step >= total))
    return regions


def _piece_regions(engine: WindowEngine, track: Track, carried: dict[str, _Carry], *, last: bool) -> list[Region]:
    held = carried.pop(track.role, None)
    if held is not None and len(held.samples):
        samples, offset = np.concatenate([held.samples, track.samples]), held.start
    else:
        samples, offset = track.samples, track.offset
    spans = engine.speech_spans(samples)
    if not last:
        limit = len(samples) - int(CARRY_TAIL_S * SAMPLE_RATE)
        done = [span for span in spans if span[1] <= limit]
        cut = spans[len(done)][0] if len(done) < len(spans) else max(limit, done[-1][1] if done else 0)
        cut = max(cut, 0)
        if len(samples) - cut > MAX_CARRY_S * SAMPLE_RATE:  # no pause for a minute: cut at the piece end
            done, cut = spans, len(samples)
        carried[track.role] = _Carry(offset + cut, samples[cut:].copy())
        spans = done
    return [Region(track.role, offset + start, samples[start:end]) for start, end in spans if end > start]


def decide_language(
    engine: WindowEngine, windows: Sequence[Window], languages: Sequence[str]
) -> tuple[str, dict[str, float], dict[int, Any]]:
    """The call's language among ``languages``, from up to ``LANGUAGE_WINDOWS`` windows spread over
    ``windows``, each weighed by its seconds of speech; the first language starts with
    ``LANGUAGE_PRIOR_S`` seconds in its favour.

    Returns the language, its normalised scores, and the encoded windows (by index) for reuse.
    """
    allowed = list(languages)
    if len(allowed) == 1:
        return allowed[0], {allowed[0]: 1.0}, {}
    if not windows:
        return allowed[0], {}, {}
    picks = sorted({int(round(i)) for i in np.linspace(0, len(windows) - 1, min(LANGUAGE_WINDOWS, len(windows)))})
    totals = dict.fromkeys(allowed, 0.0)
    totals[allowed[0]] = LANGUAGE_PRIOR_S
    encoded = dict(zip(picks, _map(engine, engine.encode, [windows[i] for i in picks]), strict=True))
    for index in picks:
        probs = engine.language_probs(encoded[index])
        weight = windows[index].speech_s
        for lang in allowed:
            totals[lang] += float(probs.get(lang, 0.0)) * weight
    total = sum(totals.values())
    if total <= 0.0:
        return allowed[0], {}, encoded
    scores = {lang: round(value / total, 4) for lang, value in totals.items()}
    return max(scores, key=lambda k: scores[k]), scores, encoded


def _map(engine: WindowEngine, fn: Callable[..., Any], *items: Sequence[Any]) -> list[Any]:
    """``fn`` over ``items`` in order, ``engine.parallel`` at a time."""
    if engine.parallel <= 1 or len(items[0]) <= 1:
        return [fn(*args) for args in zip(*items, strict=True)]
    with ThreadPoolExecutor(max_workers=engine.parallel, thread_name_prefix="asr") as pool:
        return list(pool.map(fn, *items))


def _blocks(audio: Audio, block_s: float) -> Iterator[AudioBlock]:
    if isinstance(audio, DecodedAudio) and not audio.channels:
        return iter(())
    return audio.blocks(block_s)


def transcribe_blocks(
    engine: WindowEngine, audio: Audio, asr: AsrSettings, options: Mapping[str, Any], *, block_s: float = BLOCK_S
) -> Transcript:
    """Transcribe a recording block by block with ``engine``: tracks, VAD, windows, one language, guards.

    Memory is bounded by one block of audio (plus the speech windows waiting for the language to be
    decided), whatever the recording's length.
    """
    layout: Layout | None = None
    carried: dict[str, _Carry] = {}
    packers: dict[str, WindowPacker] = {}
    waiting: list[Window] = []
    language: str | None = None
    scores: dict[str, float] = {}
    segments: list[Segment] = []
    repairs: list[dict[str, object]] = []
    blocks = 0

    def decode(windows: Sequence[Window], encoded: dict[int, Any], lang: str) -> None:
        found = _map(engine, lambda w, e: engine.decode(w, e, lang), windows,
                     [encoded.get(i) for i in range(len(windows))])
        prompt = domain_prompt(lang) if asr.domain_prompt else None
        for window, window_segments in zip(windows, found, strict=True):
            kept = clean_segments(window_segments, language=lang, prompt=prompt)
            if asr.restore_numbers:
                kept, restored = restore_numbers(window, kept, engine.score_texts, lang)
                repairs.extend(restored)
            segments.extend(kept)

    for block in _blocks(audio, block_s):
        blocks += 1
        if layout is None:
            layout = choose_layout(block.channels, audio.roles)
        windows: list[Window] = []
        for track in layout.tracks(block.channels, block.start):  # one voice per window
            packer = packers.setdefault(track.role, WindowPacker())
            windows.extend(packer.add(speech_regions(engine, track, carried, last=block.last)))
            if block.last:
                windows.extend(packer.flush())
        del block  # the stream reuses the block's arrays; the windows hold copies
        if language is not None:
            decode(windows, {}, language)
            continue
        waiting.extend(windows)
        if sum(w.speech_s for w in waiting) >= LANGUAGE_SPEECH_S or blocks >= LANGUAGE_BLOCKS:
            language, scores, encoded = decide_language(engine, waiting, asr.languages)
            decode(waiting, encoded, language)
            waiting = []
    if language is None:
        language, scores, encoded = decide_language(engine, waiting, asr.languages)
        decode(waiting, encoded, language)
    all_options = {**options, "language": language, "language_scores": scores,
                   "tracks": layout.track_roles if layout else [], "blocks": blocks, "number_repairs": repairs}
    return Transcript.from_segments(language, segments, duration=audio.duration_s, options=all_options)


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


def says_a_number(text: str) -> bool:
    """True when a decode holds a long run of digits (a phone number, an ID, an amount said digit by
    digit): a narrow beam drops one of two equal digits in a row ("一一" → "一") and such a window gets
    the full beam. The hotline's own "12345" is shorter."""
    return NUMBER_RUN.search(text) is not None


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
            sure = bool(again) and min(seg.confidence for seg in again) >= float(np.exp(LOGPROB_THRESHOLD))
            log.info("a window looped with the domain prompt; decoded again without its example: %s",
                     "kept" if sure and not still else "not kept")
            if sure and not still:
                return again
        return segments

    # -- the whole call ---------------------------------------------------------------------------
    def transcribe(self, audio: Audio, *, block_s: float = BLOCK_S) -> Transcript:
        """Transcribe a decoded call (or a streamed long recording) block by block."""
        return transcribe_blocks(self, audio, self._asr, self.options, block_s=block_s)


def load_transcriber(settings: Settings) -> Transcriber:
    """Load the configured engine (once per process: this takes seconds)."""
    if settings.asr.engine == "faster-whisper":
        return FasterWhisperTranscriber(settings)
    if settings.asr.engine == "openai-whisper":
        from pipeline.engine_openai import OpenAIWhisperTranscriber

        return OpenAIWhisperTranscriber(settings)
    raise ModelError(f"unknown transcription engine {settings.asr.engine!r}")


__all__ = [
    "Audio", "FasterWhisperTranscriber", "Layout", "Transcriber", "WINDOW_S", "choose_layout",
    "decide_language", "domain_prompt", "load_transcriber", "loop_prompt", "split_tracks", "transcribe_blocks",
    "whole_character_tokens",
]
