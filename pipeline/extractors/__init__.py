"""Ticket fields from a call transcript, by rules.

One module per field, each registered by name in ``registry.EXTRACTORS``:

    roles.py         caller vs agent speech (agent-script detection in mono calls)
    category.py      taxonomy code from weighted cue phrases
    request_type.py  complaint / help / consultation / suggestion / report / praise
    urgency.py       emergency / urgent / normal, and due_at
    location.py      district / street / community / address via the project gazetteer
    department.py    routing target from category, urgency and district
    callback.py      the caller's phone, digits only, validated
    surname.py       the caller's surname
    vulnerable.py    elderly / child / disabled / pregnant
    amounts.py       money said (numbers.py reads spoken numbers)
    summary.py       one dispatcher line

The rule data is YAML under ``rules/`` (see ``rules.py``), loaded once and validated; ``RULES_VERSION``
combines the versions of the rule files and is stored in every draft.

Example::

    >>> draft = extract_file(Path("call.json"))          # doctest: +SKIP
    >>> draft.category, draft.urgency, draft.callback_number   # doctest: +SKIP
    ('utilities.water', 'urgent', '18810012345')
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from pipeline.errors import ExtractionError, PipelineError
from pipeline.extractors import (  # noqa: F401  (importing a field module registers its extractor)
    amounts,
    callback,
    category,
    department,
    location,
    request_type,
    summary,
    surname,
    urgency,
    vulnerable,
)
from pipeline.extractors.context import Call, prepare_call
from pipeline.extractors.registry import Extraction, run_all
from pipeline.extractors.rules import Rules, load_rules
from pipeline.text.chinese import detect_language
from pipeline.ticket import FIELDS, TicketDraft
from pipeline.transcript import Segment, Transcript

__all__ = ["RULES_VERSION", "Rules", "extract_file", "extract_ticket", "load_rules", "rules_version",
           "transcript_from_json", "warm_up"]

logger = logging.getLogger(__name__)

def _shanghai() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Shanghai")
    except Exception:  # no tz database: Beijing keeps no daylight saving, a fixed offset is exact
        return timezone(timedelta(hours=8), "Asia/Shanghai")


SHANGHAI = _shanghai()


def rules_version(rules: Rules | None = None) -> str:
    """The versions of every rule file in use, the gazetteer's included: ``taxonomy@…+…+gazetteer@…``."""
    rules = rules or load_rules()
    gazetteer = location.gazetteer_version()
    return rules.version + (f"+gazetteer@{gazetteer}" if gazetteer else "")


def __getattr__(name: str) -> str:
    # RULES_VERSION is read from the rule files on first use, not at import time
    if name == "RULES_VERSION":
        return rules_version()
    raise AttributeError(name)


def warm_up(rules: Rules | None = None) -> Rules:
    """Load everything extraction needs (rules, gazetteer, number parsers, phone metadata) up front.

    A worker calls this once before taking jobs so that the first call is not slower than the rest.
    """
    from pipeline.text.numerals import cn_number
    from pipeline.text.phones import validate_number

    rules = rules or load_rules()
    location.gazetteer_version()
    cn_number("一万二")
    validate_number("13911023456", "zh")
    validate_number("2025550123", "en")
    return rules


def _language_extraction(call: Call) -> Extraction:
    span = call.roles.caller[0] if call.roles.caller else (0, len(call.text))
    end = min(span[1], span[0] + 40)
    given = call.transcript.language in ("zh", "en")
    rule = "language:transcript" if given else "language:script"
    return Extraction("language", call.language, evidence=(call.evidence(rule, span[0], end),),
                      confidence=0.95 if given else 0.85)


def extract_ticket(transcript: Transcript, *, received_at: datetime, rules: Rules | None = None) -> TicketDraft:
    """Every ticket field of one call, with evidence, confidence and the fields that need review.

    ``received_at`` is when the call came in (``due_at`` counts from it). Caller fields are read from
    caller speech only; the agent's script is recognised and skipped in mono calls.

    >>> seg = Segment(0.0, 3.0, "caller", "我们小区停水了，我姓王，电话13911023456")
    >>> draft = extract_ticket(Transcript("zh", (seg,)), received_at=datetime(2026, 1, 5, 9, 0))
    >>> draft.category, draft.urgency, draft.caller_surname, draft.callback_number
    ('utilities.water', 'urgent', '王', '13911023456')
    """
    rules = rules or load_rules()
    try:
        call = prepare_call(transcript, received_at=received_at, rules=rules)
        results = run_all(call)
    except PipelineError:
        raise
    except Exception as exc:  # a rule bug must surface as the pipeline's error, with the cause kept
        raise ExtractionError(f"extraction failed: {exc}", stage="extract") from exc
    results["language"] = _language_extraction(call)

    def value(name: str) -> Any:
        ex = results.get(name)
        return ex.value if ex is not None else None

    evidence = {name: ex.evidence for name, ex in results.items()
                if name in FIELDS and ex.evidence and ex.value not in (None, "", ())}
    confidence = {name: ex.confidence for name, ex in results.items() if name in FIELDS}
    review = tuple(name for name in FIELDS if name in results and results[name].review)
    return TicketDraft(
        request_type=value("request_type"), category=value("category"), urgency=value("urgency"),
        due_at=value("due_at"), department=value("department"), summary=value("summary") or "",
        language=call.language, district=value("district"), street=value("street"),
        community=value("community"), address=value("address"), callback_number=value("callback_number"),
        caller_surname=value("caller_surname"), vulnerable=tuple(value("vulnerable") or ()),
        amounts=tuple(value("amounts") or ()), evidence=evidence, confidence=confidence,
        needs_review=review, rules_version=rules_version(rules),
    )


# ---------------------------------------------------------------------------------------------- files
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


def _received_at(raw: Any) -> datetime:
    if raw:
        try:
            when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ExtractionError(f"received_at {raw!r} is not an ISO 8601 time", stage="extract") from exc
        return when if when.tzinfo else when.replace(tzinfo=SHANGHAI)
    return datetime.now(SHANGHAI).replace(microsecond=0)


def transcript_from_json(data: Mapping[str, Any]) -> tuple[Transcript, datetime]:
    """A transcript (and its received time) from the JSON forms ``extract_file`` accepts.

    ``{"language"?, "received_at"?, "segments": [{"speaker", "text", "start", "end"}]}``,
    ``{"turns": [[speaker, text], ...]}``, or a ``callintake process --json`` row with ``"transcript"``.
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
    return transcript, _received_at(data.get("received_at"))


def extract_file(path: Path) -> TicketDraft:
    """Ticket fields from a transcript file.

    ``.txt``: plain text, one segment a line, speaker ``mixed`` (a line may start with ``agent:`` /
    ``caller:``). ``.json``: see ``transcript_from_json``. Language is detected from the script when
    absent (Han characters → zh); ``received_at`` defaults to now in Asia/Shanghai.
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
            transcript, received_at = transcript_from_json(data)
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
        received_at = _received_at(None)
    if not transcript.segments:
        raise ExtractionError(f"{path}: the transcript is empty", stage="extract")
    logger.info("extracting %s (%s, %d segments)", path, transcript.language, len(transcript.segments))
    return extract_ticket(transcript, received_at=received_at)
