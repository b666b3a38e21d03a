"""The path every engine's transcription takes (``transcribe_blocks``); engines differ only in how a
window is encoded, how its language is scored and how it is decoded (``WindowEngine``):

* the recording is taken in blocks of ten minutes (a call of a few minutes is one block); a long one
  is never held whole, and what a block leaves unfinished at its end (speech running into the next
  block) is carried over, so that no word is cut in two;
* stereo calls keep the agent's and the caller's channels apart; a channel that is silent or a copy of
  the other is folded into one mono track (decided on the first block, which is the whole of any
  ordinary call);
* voice activity detection (``pipeline.asr.vad``) skips silence, so a channel that is quiet while the other
  party talks costs nothing to decode; each track's speech is packed into windows of up to 28 s (a
  window open at a block's end goes on in the next block), each encoded and decoded once, several side
  by side (``pipeline.asr.windows``);
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
* known Whisper failure modes are filtered (see ``pipeline.asr.cleanup``).

Each engine records the options it used in ``Transcript.options``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pipeline.asr.audio import BLOCK_S, SAMPLE_RATE, AudioBlock, DecodedAudio, StreamedAudio
from pipeline.asr.cleanup import clean_segments
from pipeline.asr.numbers_heard import restore_numbers
from pipeline.asr.prompts import domain_prompt
from pipeline.asr.tracks import Layout, choose_layout
from pipeline.asr.windows import MAX_SPAN_S, Region, Track, Window, WindowPacker
from pipeline.settings import AsrSettings
from pipeline.transcript import Segment, Transcript

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

Audio = DecodedAudio | StreamedAudio

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
