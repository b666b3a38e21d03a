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
    amounts.py       money said (``pipeline.text.numerals`` reads spoken numbers)
    summary.py       one dispatcher line

    gazetteer/       Beijing's districts, street offices and towns, found exactly or by sound
    context.py       the prepared call every extractor reads; rules.py the rule files; registry.py the order
    transcripts.py   the text and JSON transcript files ``callintake extract`` reads

The rule data is YAML under ``rules/`` (see ``rules.py``), loaded once and validated; ``RULES_VERSION``
combines the versions of the rule files and is stored in every draft.

Example::

    >>> draft = extract_file(Path("call.json"), zone=ZoneInfo("Asia/Shanghai"))   # doctest: +SKIP
    >>> draft.category, draft.urgency, draft.callback_number   # doctest: +SKIP
    ('utilities.water', 'urgent', '18810012345')
"""

from __future__ import annotations

import logging
from datetime import datetime
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
from pipeline.ticket import FIELDS, TicketDraft
from pipeline.transcript import Segment, Transcript  # noqa: F401  (Segment: the examples)

__all__ = ["RULES_VERSION", "Rules", "extract_file", "extract_ticket", "load_rules", "rules_version",
           "transcript_from_json", "warm_up"]


logger = logging.getLogger(__name__)

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


from pipeline.extractors.transcripts import extract_file, transcript_from_json  # noqa: E402  (they use extract_ticket)
