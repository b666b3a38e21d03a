"""What both engines decide the same way about one window's decode: Whisper's thresholds, the temperature
ladder, when a second decode is kept, and which tokens make whole characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

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

def says_a_number(text: str) -> bool:
    """True when a decode holds a long run of digits (a phone number, an ID, an amount said digit by
    digit): a narrow beam drops one of two equal digits in a row ("一一" → "一") and such a window gets
    the full beam. The hotline's own "12345" is shorter."""
    return NUMBER_RUN.search(text) is not None


def keep_second_decode(*, avg_logprob: float | None, looped: bool) -> bool:
    """Whether the second decode of a window that looped (decoded again with ``prompts.loop_prompt``) is
    kept: it must not loop itself and must be sure of itself (average token log-probability at least
    ``LOGPROB_THRESHOLD``); ``avg_logprob`` is None when it gave no text. Without the example exchange
    the decoder can write the prompt's vocabulary over audio it cannot place, so an unsure one is not kept.

    >>> keep_second_decode(avg_logprob=-0.3, looped=False), keep_second_decode(avg_logprob=-1.4, looped=False)
    (True, False)
    """
    return avg_logprob is not None and not looped and avg_logprob >= LOGPROB_THRESHOLD
