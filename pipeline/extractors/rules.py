"""Rule files: loading, validation and the compiled forms the extractors use.

The rule data lives in YAML files under ``pipeline/extractors/rules/`` (or a directory given to
``load_rules``), each with its own ``version``:

    taxonomy.yaml       categories: department template, default request type and urgency, weighted cues
    request_type.yaml   cues for complaint / help / report / consultation / suggestion / praise
    urgency.yaml        emergency and urgent cues, negations, the time limit of each tier
    vulnerable.yaml     cues for elderly / child / disabled / pregnant, age limits
    agent_script.yaml   what the hotline agent says (greeting, questions, closing)
    departments.yaml    emergency routing (119 / 110 / 120) and the city-level fallback
    contact.yaml        phone cues, surnames, spelled-out surnames

Every file is checked when loaded; a bad file raises ``ConfigError`` naming the file and the entry.
All cue phrases of all files go into one Aho-Corasick automaton, so a call's text is scanned once.

Example::

    >>> rules = load_rules()
    >>> rules.categories["utilities.water"].department
    '北京市自来水集团'
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from pipeline.errors import ConfigError
from pipeline.text.chinese import fold
from pipeline.ticket import REQUEST_TYPES, URGENCIES, VULNERABLE

logger = logging.getLogger(__name__)

RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FILES = ("taxonomy", "request_type", "urgency", "vulnerable", "agent_script", "departments", "contact")
TIERS = {"normal": 0, "urgent": 1, "emergency": 2}
_WORD = re.compile(r"[a-z0-9']")


@dataclass(frozen=True)
class Cue:
    """One phrase of one rule file. ``kind`` is the file's concern, ``group`` the value it points to."""

    kind: str
    group: str
    phrase: str
    weight: float = 1.0
    urgency: str | None = None
    request_type: str | None = None
    negatable: bool = False

    @property
    def rule(self) -> str:
        return f"{self.kind}:{self.group}:{self.phrase}"


@dataclass(frozen=True)
class Hit:
    """A cue found in the folded call text at ``[start, end)``."""

    cue: Cue
    start: int
    end: int


@dataclass(frozen=True)
class Category:
    code: str
    department: str
    request_type: str
    urgency: str
    negatable: bool = False


#: a gapped cue (``暖气…不热``, ``heating…off``) matches its two parts in order, at most this many
#: characters apart (Chinese, English), inside one clause (no sentence or clause punctuation between)
GAP_MAX_CHARS = {"zh": 8, "en": 32}
GAP = "…"


def gapped_pattern(phrase: str) -> re.Pattern[str]:
    """The pattern of a gapped cue: ``暖气…不热`` matches 暖气不热, 暖气从前天就不热, not 暖气好了。不热."""
    head, tail = (part.strip() for part in phrase.split(GAP, 1))
    limit = GAP_MAX_CHARS["en" if head.isascii() else "zh"]
    between = rf"[^。！？!?；;，,.\n]{{0,{limit}}}?"
    edge = r"\b" if head.isascii() else ""
    return re.compile(f"{edge}{re.escape(head)}{between}{re.escape(tail)}{edge if tail.isascii() else ''}")


@dataclass(frozen=True)
class CueMatcher:
    """All plain cue phrases in one automaton (ASCII phrases only on word boundaries); gapped cues
    (``head…tail``) as a few patterns scanned after it."""

    automaton: Any
    gapped: tuple[tuple[re.Pattern[str], tuple[Cue, ...]], ...] = ()

    def scan(self, folded: str) -> list[Hit]:
        hits: list[Hit] = []
        n = len(folded)
        for end_index, (phrase, cues, ascii_word) in self.automaton.iter(folded):
            start = end_index - len(phrase) + 1
            end = end_index + 1
            if ascii_word and (
                (start > 0 and _WORD.match(folded[start - 1])) or (end < n and _WORD.match(folded[end]))
            ):
                continue
            hits.extend(Hit(cue, start, end) for cue in cues)
        for pattern, cues in self.gapped:
            for m in pattern.finditer(folded):
                hits.extend(Hit(cue, m.start(), m.end()) for cue in cues)
        return hits


@dataclass(frozen=True)
class Rules:
    """Everything the extractors read from the rule files, validated and compiled."""

    version: str
    versions: Mapping[str, str]
    categories: Mapping[str, Category]
    matcher: CueMatcher
    negators_zh: tuple[str, ...]
    negators_en: tuple[str, ...]
    category_prior: float
    cue_prior: float
    limits: Mapping[str, timedelta]
    elderly_age: int
    child_age: int
    school_child: frozenset[str]
    agent_clause: re.Pattern[str]
    agent_span: re.Pattern[str]
    clause_max_chars: Mapping[str, int]
    clause_leftover_chars: Mapping[str, int]
    city_prefix: str
    districts: tuple[str, ...]
    emergency_routes: Mapping[str, str]
    medical_number: str
    medical_cues: tuple[str, ...]
    crime_number: str
    crime_cues: tuple[str, ...]
    rescue_number: str
    rescue_cues: tuple[str, ...]
    phone_cues: tuple[str, ...]
    prompt_numbers: frozenset[str]
    prompt_surnames: frozenset[str]
    surnames: frozenset[str]
    common_surnames: tuple[str, ...]
    compound_surnames: frozenset[str]
    spelled_surnames: Mapping[str, str]
    not_names: frozenset[str]
    directory: Path = field(default=RULES_DIR)


# ---------------------------------------------------------------------------------------------- validation
class _Checker:
    """Small helpers that raise ConfigError with the file and the entry path in the message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"rule file {self.path}: {where}: {message}", stage="extract")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return value

    def seq(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}")
        return value

    def text(self, value: Any, where: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(where, f"expected text, got {type(value).__name__}")
        text = str(value).strip()
        if not text:
            raise self.fail(where, "empty text")
        return text

    def texts(self, value: Any, where: str) -> tuple[str, ...]:
        return tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(self.seq(value, where)))

    def number(self, value: Any, where: str, *, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {value!r}")
        if value < minimum:
            raise self.fail(where, f"must be >= {minimum}, got {value!r}")
        return float(value)

    def choice(self, value: Any, where: str, allowed: Iterable[str]) -> str:
        allowed = tuple(allowed)
        if value not in allowed:
            raise self.fail(where, f"{value!r} is not one of {', '.join(allowed)}")
        return str(value)

    def regex(self, value: Any, where: str) -> str:
        text = self.text(value, where)
        try:
            re.compile(text)
        except re.error as exc:
            raise self.fail(where, f"bad regular expression {text!r}: {exc}") from exc
        return text


def _read(path: Path) -> tuple[_Checker, dict[str, Any]]:
    check = _Checker(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"rule file {path}: cannot be read: {exc}", stage="extract") from exc
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"rule file {path}: not valid YAML: {exc}", stage="extract") from exc
    data = check.mapping(data, "top level")
    check.text(data.get("version"), "version")
    return check, data


def _cue_entries(check: _Checker, value: Any, where: str) -> Iterable[tuple[str, float, dict[str, Any]]]:
    """``phrase: weight`` or ``phrase: {weight, urgency, request_type}`` pairs of a cue mapping."""
    for phrase, spec in check.mapping(value if value is not None else {}, where).items():
        here = f"{where}.{phrase}"
        phrase = check.text(phrase, here)
        if GAP in phrase and (phrase.count(GAP) != 1 or not all(p.strip() for p in phrase.split(GAP))):
            raise check.fail(here, f"a gapped cue is two phrases joined by one '{GAP}'")
        if isinstance(spec, dict):
            unknown = set(spec) - {"weight", "urgency", "request_type"}
            if unknown:
                raise check.fail(here, f"unknown keys {sorted(unknown)}")
            weight = check.number(spec.get("weight", 1), f"{here}.weight")
            extra = {}
            if spec.get("urgency") is not None:
                extra["urgency"] = check.choice(spec["urgency"], f"{here}.urgency", URGENCIES)
            if spec.get("request_type") is not None:
                extra["request_type"] = check.choice(spec["request_type"], f"{here}.request_type", REQUEST_TYPES)
            yield phrase, weight, extra
        else:
            yield phrase, check.number(spec, here), {}


def _build(directory: Path) -> Rules:
    cues: list[Cue] = []
    versions: dict[str, str] = {}
    files: dict[str, tuple[_Checker, dict[str, Any]]] = {}
    for name in RULE_FILES:
        path = directory / f"{name}.yaml"
        if not path.exists():
            raise ConfigError(f"rule file {path}: missing", stage="extract")
        files[name] = _read(path)
        versions[name] = str(files[name][1]["version"])

    # taxonomy
    check, data = files["taxonomy"]
    neg = check.mapping(data.get("negators"), "negators")
    negators_zh = check.texts(neg.get("zh"), "negators.zh")
    negators_en = tuple(fold(v) for v in check.texts(neg.get("en"), "negators.en"))
    categories: dict[str, Category] = {}
    for code, spec in check.mapping(data.get("categories"), "categories").items():
        where = f"categories.{code}"
        spec = check.mapping(spec, where)
        if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", str(code)):
            raise check.fail(where, "category codes look like 'area.topic'")
        department = check.text(spec.get("department"), f"{where}.department")
        cat = Category(
            code=code, department=department,
            request_type=check.choice(spec.get("request_type"), f"{where}.request_type", REQUEST_TYPES),
            urgency=check.choice(spec.get("urgency"), f"{where}.urgency", URGENCIES),
            negatable=bool(spec.get("negatable", False)),
        )
        categories[code] = cat
        for phrase, weight, extra in _cue_entries(check, spec.get("cues"), f"{where}.cues"):
            cues.append(Cue("category", code, fold(phrase), weight, negatable=cat.negatable, **extra))
        for phrase in check.texts(spec.get("negations") or [], f"{where}.negations"):
            cues.append(Cue("negation", "category", fold(phrase), 0.0))
    if "other" not in categories:
        raise check.fail("categories", "the fallback category 'other' is missing")

    # request types
    check, data = files["request_type"]
    category_prior = check.number(data.get("category_prior"), "category_prior")
    cue_prior = check.number(data.get("cue_prior"), "cue_prior")
    types = check.mapping(data.get("types"), "types")
    for rtype, spec in types.items():
        check.choice(rtype, f"types.{rtype}", REQUEST_TYPES)
        for phrase, weight, _extra in _cue_entries(check, spec, f"types.{rtype}"):
            cues.append(Cue("request_type", rtype, fold(phrase), weight))

    # urgency
    check, data = files["urgency"]
    limits_raw = check.mapping(data.get("limits_hours"), "limits_hours")
    limits = {}
    for tier in URGENCIES:
        limits[tier] = timedelta(hours=check.number(limits_raw.get(tier), f"limits_hours.{tier}", minimum=0.01))
    for tier in ("emergency", "urgent"):
        for phrase, weight, _extra in _cue_entries(check, data.get(tier), tier):
            cues.append(Cue("urgency", tier, fold(phrase), weight, negatable=True))
    for phrase in check.texts(data.get("negations") or [], "negations"):
        cues.append(Cue("negation", "urgency", fold(phrase), 0.0))

    # vulnerable
    check, data = files["vulnerable"]
    elderly_age = int(check.number(data.get("elderly_age"), "elderly_age", minimum=1))
    child_age = int(check.number(data.get("child_age"), "child_age", minimum=1))
    groups = check.mapping(data.get("groups"), "groups")
    for group, phrases in groups.items():
        check.choice(group, f"groups.{group}", VULNERABLE)
        for phrase in check.texts(phrases, f"groups.{group}"):
            cues.append(Cue("vulnerable", group, fold(phrase), 1.0, negatable=True))
    school_child = frozenset(fold(p) for p in check.texts(data.get("school_child") or [], "school_child"))
    for phrase in school_child:
        cues.append(Cue("school_child", "child", phrase, 1.0, negatable=True))
    for phrase in check.texts(data.get("negations") or [], "negations"):
        cues.append(Cue("negation", "vulnerable", fold(phrase), 0.0))

    # agent script
    check, data = files["agent_script"]
    clause_patterns = [check.regex(p, f"clause[{i}]") for i, p in enumerate(check.seq(data.get("clause"), "clause"))]
    span_patterns = [check.regex(p, f"span[{i}]") for i, p in enumerate(check.seq(data.get("span"), "span"))]
    max_chars = check.mapping(data.get("clause_max_chars"), "clause_max_chars")
    clause_max_chars = {lang: int(check.number(max_chars.get(lang), f"clause_max_chars.{lang}", minimum=1))
                        for lang in ("zh", "en")}
    leftover = check.mapping(data.get("clause_leftover_chars"), "clause_leftover_chars")
    clause_leftover_chars = {
        lang: int(check.number(leftover.get(lang), f"clause_leftover_chars.{lang}", minimum=0))
        for lang in ("zh", "en")}

    # departments
    check, data = files["departments"]
    city_prefix = check.text(data.get("city_prefix"), "city_prefix")
    districts = check.texts(data.get("districts"), "districts")
    emergency_routes = {}
    for code, number in check.mapping(data.get("emergency"), "emergency").items():
        if code not in categories:
            raise check.fail(f"emergency.{code}", "not a category of taxonomy.yaml")
        emergency_routes[code] = check.text(number, f"emergency.{code}")
    medical_number = check.text(data.get("medical_number"), "medical_number")
    crime_number = check.text(data.get("crime_number"), "crime_number")
    medical_cues = tuple(fold(c) for c in check.texts(data.get("medical_cues"), "medical_cues"))
    crime_cues = tuple(fold(c) for c in check.texts(data.get("crime_cues"), "crime_cues"))
    for c in medical_cues:
        cues.append(Cue("route", medical_number, c))
    for c in crime_cues:
        cues.append(Cue("route", crime_number, c))
    rescue_number = check.text(data.get("rescue_number"), "rescue_number")
    rescue_cues = tuple(fold(c) for c in check.texts(data.get("rescue_cues"), "rescue_cues"))
    for c in rescue_cues:
        cues.append(Cue("route", rescue_number, c))

    # contact
    check, data = files["contact"]
    phone_cues = tuple(fold(c) for c in check.texts(data.get("phone_cues"), "phone_cues"))
    prompt_numbers = frozenset(check.texts(data.get("prompt_numbers") or [], "prompt_numbers"))
    prompt_surnames = frozenset(check.texts(data.get("prompt_surnames") or [], "prompt_surnames"))
    for n in prompt_numbers:
        if not n.isdigit():
            raise check.fail("prompt_numbers", f"{n!r} is not digits only")
    for c in phone_cues:
        cues.append(Cue("phone", "phone", c))
    surname_order = check.text(data.get("surnames"), "surnames").replace(" ", "")
    surnames = frozenset(surname_order)
    common_count = int(check.number(data.get("common_count", 100), "common_count", minimum=0))
    common_surnames = tuple(surname_order[:common_count])
    compound = frozenset(check.texts(data.get("compound_surnames"), "compound_surnames"))
    spelled = {check.text(k, f"spelled.{k}"): check.text(v, f"spelled.{k}")
               for k, v in check.mapping(data.get("spelled"), "spelled").items()}
    not_names = frozenset(fold(w) for w in check.texts(data.get("not_names"), "not_names"))

    automaton = ahocorasick.Automaton()
    by_phrase: dict[str, list[Cue]] = {}
    for cue in cues:
        by_phrase.setdefault(cue.phrase, []).append(cue)
    gapped = []
    for key, same in by_phrase.items():
        if GAP in key:
            gapped.append((gapped_pattern(key), tuple(same)))
            continue
        automaton.add_word(key, (key, tuple(same), key.isascii() and bool(_WORD.match(key[0]))))
    automaton.make_automaton()

    def alternation(patterns: list[str]) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else re.compile(r"(?!x)x")

    version = "+".join(f"{name}@{versions[name]}" for name in RULE_FILES)
    return Rules(
        version=version, versions=versions, categories=categories, matcher=CueMatcher(automaton, tuple(gapped)),
        negators_zh=negators_zh, negators_en=negators_en, category_prior=category_prior, cue_prior=cue_prior,
        limits=limits, elderly_age=elderly_age, child_age=child_age, school_child=school_child,
        agent_clause=alternation(clause_patterns), agent_span=alternation(span_patterns),
        clause_max_chars=clause_max_chars, clause_leftover_chars=clause_leftover_chars, city_prefix=city_prefix,
        districts=districts,
        emergency_routes=emergency_routes, medical_number=medical_number, medical_cues=medical_cues,
        crime_number=crime_number, crime_cues=crime_cues, rescue_number=rescue_number, rescue_cues=rescue_cues,
        phone_cues=phone_cues, prompt_numbers=prompt_numbers, prompt_surnames=prompt_surnames,
        surnames=surnames,
        common_surnames=common_surnames, compound_surnames=compound,
        spelled_surnames=spelled, not_names=not_names, directory=directory,
    )


_CACHE: dict[Path, Rules] = {}
_LOCK = threading.Lock()


def load_rules(path: Path | None = None) -> Rules:
    """Load and validate the rule files of ``path`` (a directory; default: the bundled rules), cached.

    Raises ``ConfigError`` naming the file and the entry when a file is missing, is not YAML, or has an
    entry of the wrong shape (unknown request type, urgency or vulnerable group, a bad regex, ...).

    >>> load_rules().versions["taxonomy"]  # doctest: +SKIP
    '2026.11.3'
    """
    directory = Path(path).resolve() if path is not None else RULES_DIR
    with _LOCK:
        rules = _CACHE.get(directory)
        if rules is None:
            rules = _build(directory)
            _CACHE[directory] = rules
            logger.info("loaded extraction rules %s from %s", rules.version, directory)
        return rules
