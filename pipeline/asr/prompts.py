"""The decoder's initial prompts: hotline and Beijing place vocabulary, per language (``data/<lang>.txt``).

A prompt file holds the vocabulary on its first line and, optionally, an example exchange on the next ones
(the agent asking a name, a caller answering with a number in Chinese numerals).
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def _prompt_lines(language: str) -> tuple[str, ...]:
    try:
        text = resources.files("pipeline.asr.data").joinpath(f"{language}.txt").read_text("utf-8")
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
