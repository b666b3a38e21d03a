"""The gazetteer's data file, validated and expanded, and the values matching yields.

``rules/gazetteer.yaml`` names the 16 districts and their street offices, towns, townships and area
offices, with aliases, readings and vetoes (see the file's own header). ``build`` checks it and expands
every entry into the written forms a caller may use: the name, its aliases, the bare stem where it counts
alone (回龙观 → 回龙观街道), stem + 地区 / 乡, and forms with Arabic numerals (十八里店 → 18里店), each with
its toneless readings for the sound matchers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.extractors.gazetteer.phonetics import strict_syllables
from pipeline.text import pinyin
from pipeline.text.chinese import HAN
from pipeline.text.numerals import DIGIT_VALUES

DATA_PATH = Path(__file__).resolve().parents[1] / "rules" / "gazetteer.yaml"

#: the 16 districts of Beijing; the data file may not name any other
DISTRICTS = (
    "东城区", "西城区", "朝阳区", "海淀区", "丰台区", "石景山区", "门头沟区", "房山区", "通州区", "顺义区",
    "昌平区", "大兴区", "怀柔区", "平谷区", "密云区", "延庆区",
)

#: suffixes a street-level name may end with, longest first (the stem is the name without it)
SUFFIXES = ("满族蒙古族乡", "满族乡", "回族乡", "街道", "地区", "镇", "乡")

_ENTRY_KEYS = {"name", "bare", "generic", "aliases", "pinyin", "reject_followed_by", "reject_preceded_by"}

_DISTRICT_KEYS = {"short", "english", "short_needs_context", "reject_followed_by", "reject_preceded_by"}



@dataclass(frozen=True)
class PlaceMatch:
    """One place found in a text: what it is, where it was said, and how sure the match is."""

    kind: str
    """``district`` | ``street`` | ``community`` (and ``address`` among a Location's matches)."""
    name: str
    """Canonical name: 朝阳区 / 和平街街道 / 煤炭科技苑社区 / 金隅小区3号楼."""
    district: str | None
    """The district the place belongs to (a district's is itself; None for communities and addresses)."""
    start: int
    end: int
    """Span in the text given to ``find``/``resolve``."""
    surface: str
    """The text as written there."""
    score: float
    """1.0 for the name or an alias as written; below 1.0 for a recovery by sound."""
    rule: str
    """``gazetteer.exact`` / ``gazetteer.alias`` / ``gazetteer.pinyin`` / ``gazetteer.english`` /
    ``community.pattern`` / ``address.pattern`` / ``address.en``."""

@dataclass(frozen=True)
class Location:
    """The caller's location resolved from a text; every field None when no place is said."""

    district: str | None
    street: str | None
    community: str | None
    address: str | None
    matches: tuple[PlaceMatch, ...] = ()
    """The matches the values came from."""
    district_inferred: bool = False
    """The district was not said; it was taken from the street."""
    conflict: str | None = None
    """Why the street and the district said do not agree, e.g. 'street 和平街街道 belongs to 朝阳区,
    caller said 海淀区'."""
    confidence: float = 0.0

@dataclass(frozen=True)
class Entry:
    """A place of the data file."""

    kind: str  # "district" | "street"
    name: str
    district: str
    stem: str
    generic: bool = False
    reject_followed_by: tuple[str, ...] = ()
    bare: bool = True  # the stem alone names it (回龙观)
    reject_preceded_by: tuple[str, ...] = ()

@dataclass(frozen=True)
class Variant:
    """A way of writing one or more entries (two entries share a variant when a name exists twice)."""

    surface: str
    entries: tuple[int, ...]
    rule: str
    bare: bool  # written without its suffix (回龙观, 海淀)
    needs_context: bool = False
    readings: tuple[tuple[str, ...], ...] = ()  # strict toneless syllables, one tuple per reading

@dataclass(frozen=True)
class PreparedText:
    """A text prepared for matching: simplified, half-width, without whitespace, mapped back to the input."""

    original: str
    norm: str
    index: list[int] | None  # norm position → original position (None: identity)

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.index is None:
            return start, end
        return self.index[start], self.index[end - 1] + 1

@dataclass(frozen=True)
class Candidate:
    """A candidate place during matching (norm coordinates)."""

    start: int
    end: int
    variant: int | None
    entries: tuple[int, ...]
    score: float
    rule: str
    kind: str = "place"
    name: str = ""


# ----------------------------------------------------------------------------------------------------------
# readings
def english_index(
    entries: Sequence[Entry], data: Mapping[str, Any],
) -> dict[str, list[tuple[str, int, bool]]]:
    """Lower-case joined pinyin → (kind, entry, counts without a type word)."""
    overrides = _overrides(data)
    index: dict[str, list[tuple[str, int, bool]]] = {}
    for eid, e in enumerate(entries):
        if e.kind == "district":
            english = str(data["districts"][e.name].get("english") or "")
            spoken = "".join(name_readings(e.stem, overrides)[0])
            keys = {english.lower().replace(" ", ""), spoken}
            for key in keys:
                if key:
                    index.setdefault(key, []).append(("district", eid, True))
        else:
            key = "".join(name_readings(e.stem, overrides)[0])
            index.setdefault(key, []).append(("street", eid, e.bare))
    return index

# ----------------------------------------------------------------------------------------------------------
# data file → entries and written forms
def _overrides(data: Mapping[str, Any]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for phrase, value in (data.get("pinyin_overrides") or {}).items():
        readings = value if isinstance(value, list) else [value]
        out[str(phrase)] = [str(r).split() for r in readings]
    return out

def name_readings(name: str, overrides: Mapping[str, list[list[str]]]) -> list[list[str]]:
    """Readings of a name: pypinyin's phrase reading with the data file's overrides applied, then the
    character-by-character default reading (how a recogniser's text of the same characters reads)."""
    from pypinyin import lazy_pinyin

    base = [p if p else "#" for p in lazy_pinyin(name, errors=lambda chars: ["#"] * len(chars))]
    if len(base) != len(name):
        base = [pinyin.reading(c) or "#" for c in name]
    readings = [base]
    for phrase, alts in sorted(overrides.items(), key=lambda kv: -len(kv[0])):
        pos = name.find(phrase)
        if pos < 0:
            continue
        new = []
        for r in readings:
            for alt in alts:
                new.append(r[:pos] + alt + r[pos + len(phrase):])
        readings = new
    per_char = [pinyin.reading(c) or "#" for c in name]
    if per_char not in readings:
        readings.append(per_char)
    return readings

def _str_list(spec: Mapping[str, Any], key: str, bad: Any, where: str) -> tuple[str, ...]:
    value = spec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad(f"district {where}: '{key}' must be a list of words")
    return tuple(value)

def cn_numerals_to_digits(name: str) -> str:
    """十八里店 → 18里店, 三里屯 → 3里屯, 十三陵 → 13陵 (numbers below 100 only)."""

    def convert(m: re.Match[str]) -> str:
        s = m.group()
        if "十" not in s:
            return "".join(DIGIT_VALUES[c] for c in s) if len(s) == 1 else s
        head, _, tail = s.partition("十")
        if len(head) > 1 or len(tail) > 1:
            return s
        tens = int(DIGIT_VALUES[head]) if head else 1
        ones = int(DIGIT_VALUES[tail]) if tail else 0
        return str(tens * 10 + ones)

    return re.sub(r"[一二三四五六七八九十]+", convert, name)

def build(data: Any, source: str) -> tuple[str, tuple[Entry, ...], tuple[Variant, ...]]:
    """Validate the data file and expand it into entries and written forms."""
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"gazetteer file {source}: {msg}")

    if not isinstance(data, Mapping):
        raise bad("top level must be a mapping with version, districts and places")
    for key in ("version", "districts", "places"):
        if key not in data:
            raise bad(f"missing field '{key}'")
    version = data["version"]
    if not isinstance(version, str | int | float) or not str(version).strip():
        raise bad("field 'version' must be a non-empty string")
    districts = data["districts"]
    places = data["places"]
    if not isinstance(districts, Mapping) or not isinstance(places, Mapping):
        raise bad("'districts' and 'places' must be mappings keyed by district name")
    overrides_raw = data.get("pinyin_overrides") or {}
    if not isinstance(overrides_raw, Mapping):
        raise bad("'pinyin_overrides' must map a phrase to its toneless reading")
    for phrase, value in overrides_raw.items():
        for reading in value if isinstance(value, list) else [value]:
            if not isinstance(reading, str) or len(reading.split()) != len(str(phrase)):
                raise bad(f"pinyin override for {phrase!r} must give one syllable per character, "
                          f"got {reading!r}")
    overrides = _overrides(data)

    for name in list(districts) + list(places):
        if name not in DISTRICTS:
            raise bad(f"unknown district {name!r} (Beijing's districts are: {' '.join(DISTRICTS)})")
    missing = [d for d in DISTRICTS if d not in districts]
    if missing:
        raise bad(f"districts missing: {' '.join(missing)}")

    entries: list[Entry] = []
    variants: dict[str, dict[str, Any]] = {}

    def add(surface: str, eid: int, rule: str, *, bare: bool, needs_context: bool = False) -> None:
        slot = variants.setdefault(surface, {"entries": [], "rule": rule, "bare": bare, "ctx": needs_context})
        if eid not in slot["entries"]:
            slot["entries"].append(eid)

    for dname in DISTRICTS:
        info = districts[dname]
        if not isinstance(info, Mapping):
            raise bad(f"district {dname}: expected a mapping with 'short' and 'english'")
        unknown = set(info) - _DISTRICT_KEYS
        if unknown:
            raise bad(f"district {dname}: unknown field(s) {', '.join(sorted(unknown))}")
        short = info.get("short")
        if not isinstance(short, str) or not short or not dname.startswith(short):
            raise bad(f"district {dname}: field 'short' is missing or is not the start of the name")
        if not isinstance(info.get("english"), str) or not info["english"]:
            raise bad(f"district {dname}: missing field 'english'")
        eid = len(entries)
        entries.append(Entry("district", dname, dname, short,
                              reject_followed_by=_str_list(info, "reject_followed_by", bad, dname),
                              reject_preceded_by=_str_list(info, "reject_preceded_by", bad, dname)))
        add(dname, eid, "gazetteer.exact", bare=False)
        add(short, eid, "gazetteer.alias", bare=True, needs_context=bool(info.get("short_needs_context")))

    district_forms = set(variants)
    canonical: dict[str, str] = {}  # street-level name → first district (for alias collision checks)
    pending_auto: list[tuple[str, int, bool]] = []
    for dname, items in places.items():
        if not isinstance(items, list) or not items:
            raise bad(f"district {dname}: places must be a non-empty list")
        seen: set[str] = set()
        for raw in items:
            spec: Mapping[str, Any] = {"name": raw} if isinstance(raw, str) else raw
            if not isinstance(spec, Mapping):
                raise bad(f"district {dname}: entry {raw!r} must be a name or a mapping with 'name'")
            unknown = set(spec) - _ENTRY_KEYS
            if unknown:
                raise bad(f"district {dname}: entry {spec.get('name', raw)!r} has unknown field(s) "
                          f"{', '.join(sorted(unknown))}")
            name = spec.get("name")
            if not isinstance(name, str) or not name.strip():
                raise bad(f"district {dname}: entry {raw!r} has no 'name'")
            if name in seen:
                raise bad(f"district {dname}: duplicate name {name}")
            seen.add(name)
            suffix = next((s for s in SUFFIXES if name.endswith(s) and len(name) > len(s)), None)
            if suffix is None:
                raise bad(f"district {dname}: {name} does not end with one of {' '.join(SUFFIXES)}")
            if name in district_forms:
                raise bad(f"district {dname}: {name} is also a district name")
            stem = name[: -len(suffix)]
            aliases = spec.get("aliases") or []
            if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
                raise bad(f"district {dname}: {name}: 'aliases' must be a list of names")
            generic = bool(spec.get("generic", False))
            where = f"{dname}: {name}"
            eid = len(entries)
            bare = bool(spec.get("bare", len(stem) >= 3)) and not generic
            entries.append(Entry("street", name, dname, stem, generic,
                                  reject_followed_by=_str_list(spec, "reject_followed_by", bad, where),
                                  reject_preceded_by=_str_list(spec, "reject_preceded_by", bad, where),
                                  bare=bare))
            if "pinyin" in spec:
                syllables = str(spec["pinyin"]).split()
                if len(syllables) != len(name):
                    raise bad(f"district {where}: 'pinyin' must give one syllable per character")
                overrides.setdefault(stem, []).append(syllables[: len(stem)])
            canonical.setdefault(name, dname)
            add(name, eid, "gazetteer.exact", bare=False)
            for alias in aliases:
                if alias in district_forms:
                    raise bad(f"district {dname}: alias {alias} of {name} is a district name")
                add(alias, eid, "gazetteer.alias", bare=not alias.endswith(SUFFIXES))
            pending_auto.append((stem, eid, bare))
            if not generic and len(stem) >= 2:
                if suffix != "地区":
                    pending_auto.append((stem + "地区", eid, False))
                if suffix != "乡" and not stem.endswith("乡"):  # once townships: 卢沟桥乡, 南磨房乡
                    pending_auto.append((stem + "乡", eid, False))

    # generated forms: never over a canonical name of another place or a district form
    for surface, eid, is_bare in pending_auto:
        stem_only = surface == entries[eid].stem
        if (stem_only and (not is_bare or len(surface) < 2)) or surface in district_forms:
            continue
        owner = variants.get(surface)
        if owner is not None and not owner.get("auto") and eid not in owner["entries"]:
            continue  # the name or an explicit alias of another place
        add(surface, eid, "gazetteer.alias", bare=stem_only)
        if owner is None:
            variants[surface]["auto"] = True

    # Arabic-numeral forms of names with numbers (十八里店 → 18里店)
    for surface in list(variants):
        digits = cn_numerals_to_digits(surface)
        if digits != surface and digits not in variants:
            slot = variants[surface]
            for eid in slot["entries"]:
                add(digits, eid, "gazetteer.alias", bare=slot["bare"], needs_context=slot["ctx"])

    out: list[Variant] = []
    for surface, slot in variants.items():
        readings: tuple[tuple[str, ...], ...] = ()
        if all(HAN.match(c) or c.isdigit() for c in surface):
            if any(c.isdigit() for c in surface):
                readings = (tuple(strict_syllables(surface)),)
            else:
                readings = tuple(tuple(r) for r in name_readings(surface, overrides))
        out.append(Variant(surface, tuple(slot["entries"]), slot["rule"], slot["bare"], slot["ctx"],
                            readings))
    return str(version), tuple(entries), tuple(out)
