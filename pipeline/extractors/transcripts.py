"""Transcripts from files: the text and JSON forms ``callintake extract`` reads, turned into a ticket draft."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from pipeline.errors import ExtractionError
from pipeline.extractors import extract_ticket
from pipeline.text.chinese import detect_language
from pipeline.ticket import TicketDraft
from pipeline.transcript import Segment, Transcript

logger = logging.getLogger(__name__)

_SPEAKER_PREFIX = re.compile(r"^\s*(agent|caller|坐席|话务员|客服|市民|来电人|来电者)\s*[:：]\s*", re.IGNORECASE)
_SPEAKER_NAMES = {"坐席": "agent", "话务员": "agent", "客服": "agent", "市民": "caller", "来电人": "caller",
                  "来电者": "caller"}


def _speaker(raw: Any) -> str:
    text = str(raw or "mixed").strip().lower()
    text = _SPEAKER_NAMES.get(text, text)
    return text if text in ("agent", "caller", "mixed") else "mixed"


def _timed(turns: list[tuple[str, str]]) -> list[Segment]:
    """Segments with plausible times for transcripts that carry none (about 4 Han chars or 14 letters a second)."""
    out, t = [], 0.0
    for speaker, text in turns:
        han = len(re.findall(r"[\u4e00-\u9fff]", text))
        seconds = max(han / 4.0 + (len(text) - han) / 14.0, 0.5)
        out.append(Segment(start=round(t, 3), end=round(t + seconds, 3), speaker=speaker, text=text))
        t += seconds + 0.3
    return out


def _received_at(raw: Any, zone: tzinfo) -> datetime:
    if raw:
        try:
            when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ExtractionError(f"received_at {raw!r} is not an ISO 8601 time", stage="extract") from exc
        return when if when.tzinfo else when.replace(tzinfo=zone)
    return datetime.now(zone).replace(microsecond=0)


def transcript_from_json(data: Mapping[str, Any], *, zone: tzinfo) -> tuple[Transcript, datetime]:
    """A transcript (and its received time) from the JSON forms ``extract_file`` accepts.

    ``{"language"?, "received_at"?, "segments": [{"speaker", "text", "start", "end"}]}``,
    ``{"turns": [[speaker, text], ...]}``, or a ``callintake process --json`` row with ``"transcript"``.
    A ``received_at`` without an offset is read in ``zone`` (the hotline's); none means now.
    """
    if "transcript" in data and isinstance(data["transcript"], Mapping):
        inner = dict(data["transcript"])
        inner.setdefault("received_at", data.get("received_at"))
        data = inner
    if isinstance(data.get("segments"), list):
        segments = []
        for i, seg in enumerate(data["segments"]):
            if not isinstance(seg, Mapping) or not isinstance(seg.get("text"), str):
                raise ExtractionError(f"segment {i} has no text", stage="extract")
            segments.append(Segment.from_dict({**seg, "speaker": _speaker(seg.get("speaker"))}))
        if segments and all(s.start == 0 and s.end == 0 for s in segments):
            segments = _timed([(s.speaker, s.text) for s in segments])
    elif isinstance(data.get("turns"), list):
        turns = []
        for i, turn in enumerate(data["turns"]):
            if isinstance(turn, list | tuple) and len(turn) == 2:
                turns.append((_speaker(turn[0]), str(turn[1])))
            elif isinstance(turn, Mapping) and "text" in turn:
                turns.append((_speaker(turn.get("speaker")), str(turn["text"])))
            else:
                raise ExtractionError(f"turn {i} is not [speaker, text]", stage="extract")
        segments = _timed(turns)
    else:
        raise ExtractionError("JSON transcript needs 'segments' or 'turns'", stage="extract")
    segments = [s for s in segments if s.text.strip()]
    text = " ".join(s.text for s in segments)
    language = str(data.get("language") or data.get("lang") or "")
    if language not in ("zh", "en"):
        language = detect_language(text)
    duration = float(data.get("duration") or (segments[-1].end if segments else 0.0))
    transcript = Transcript(language=language, segments=tuple(segments), duration=duration,
                            options={"source": "file"})
    return transcript, _received_at(data.get("received_at"), zone)


def extract_file(path: Path, *, zone: tzinfo) -> TicketDraft:
    """Ticket fields from a transcript file.

    ``.txt``: plain text, one segment a line, speaker ``mixed`` (a line may start with ``agent:`` /
    ``caller:``). ``.json``: see ``transcript_from_json``. Language is detected from the script when
    absent (Han characters → zh); ``received_at`` defaults to now, and is read in ``zone`` (the hotline's
    time zone, ``settings.timezone``) when it carries no offset.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ExtractionError(f"{path}: cannot be read: {exc}", stage="extract") from exc
    except UnicodeDecodeError as exc:
        raise ExtractionError(f"{path}: not UTF-8 text", stage="extract") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ExtractionError(f"{path}: not valid JSON: {exc}", stage="extract") from exc
        if not isinstance(data, Mapping):
            raise ExtractionError(f"{path}: JSON transcript must be an object", stage="extract")
        try:
            transcript, received_at = transcript_from_json(data, zone=zone)
        except ExtractionError as exc:
            raise ExtractionError(f"{path}: {exc}", stage="extract") from exc
    else:
        turns = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            m = _SPEAKER_PREFIX.match(line)
            if m:
                turns.append((_speaker(m.group(1)), line[m.end():].strip()))
            else:
                turns.append(("mixed", line.strip()))
        segments = _timed(turns)
        text = " ".join(s.text for s in segments)
        transcript = Transcript(language=detect_language(text), segments=tuple(segments),
                                duration=segments[-1].end if segments else 0.0, options={"source": "file"})
        received_at = _received_at(None, zone)
    if not transcript.segments:
        raise ExtractionError(f"{path}: the transcript is empty", stage="extract")
    logger.info("extracting %s (%s, %d segments)", path, transcript.language, len(transcript.segments))
    return extract_ticket(transcript, received_at=received_at)
