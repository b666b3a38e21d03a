"""Helpers for the extractor tests: build a call from caller (and agent) turns and extract its ticket."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from pipeline.extractors import extract_ticket
from pipeline.ticket import TicketDraft
from pipeline.transcript import Segment, Transcript

RECEIVED = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))


def make_transcript(turns: Sequence[tuple[str, str]], language: str = "") -> Transcript:
    segments, t = [], 0.0
    for speaker, text in turns:
        segments.append(Segment(start=t, end=t + 2.0, speaker=speaker, text=text))
        t += 2.5
    if not language:
        language = "zh" if any("\u4e00" <= ch <= "\u9fff" for _, text in turns for ch in text) else "en"
    return Transcript(language=language, segments=tuple(segments))


def ticket_of(*turns: tuple[str, str] | str, language: str = "") -> TicketDraft:
    """A ticket from turns; a bare string is one caller turn."""
    norm = [("caller", t) if isinstance(t, str) else t for t in turns]
    return extract_ticket(make_transcript(norm, language), received_at=RECEIVED)
