"""Beijing places in a transcript: district, street office or town, community, and the address remainder.

What it finds
    - the 16 districts (朝阳区, or 海淀 / 东城 said alone; 朝阳 alone only in a context that makes it a
      place: 在朝阳, 朝阳这边, 北京朝阳), street offices, towns, townships and area offices from the data
      file ``rules/gazetteer.yaml`` (about 340 names), with their aliases (回龙观 → 回龙观街道, 崇外 →
      崇文门外街道, 18里店 → 十八里店地区);
    - the same names written with the wrong characters by speech recognition, recovered by sound
      (海电区 → 海淀区, 和平节 → 和平街街道, 东花10街道 → 东花市街道, 锋排区 → 丰台区): Traditional
      characters are converted first, then the text's toneless pinyin is matched against every name's.
      Three tiers, each stricter about the text around it: all syllables alike with two characters as
      written (second Aho-Corasick automaton over pinyin); one stem syllable off before a suffix written
      as such (锋排区); one syllable off with the suffix misheard too, only among the streets of a
      district the caller named (通州区宋当阵 → 宋庄镇);
    - communities by pattern (煤炭科技苑社区, 西红门村), never generic ones (农村, 这个社区, 城中村);
    - the address remainder after the place (金隅小区3号楼2单元, 西街十八号; 42 Maple Avenue in English).

What it does not do
    - decide who said what: the caller passes the caller's words only;
    - know places below the community level (buildings, shops), or outside Beijing;
    - guess a district from a community or road name alone.

Example::

    >>> gaz = Gazetteer.load()
    >>> loc = gaz.resolve("我住在朝阳区和平街煤炭科技苑社区3号楼")
    >>> (loc.district, loc.street, loc.community, loc.address)
    ('朝阳区', '和平街街道', '煤炭科技苑社区', '3号楼')

Precision: ordinary words that sound like places stay ordinary (上帝 is not 上地, 河北正在 is not 河北镇,
大型区域 is not 大兴区); names that are also common words only count with their suffix (平房地区, 光明街道);
the data file can veto a name by its neighbours (张镇长, 大兴安岭).

Speed: names, readings and both automata are built once per data file (``Gazetteer.load`` caches);
``resolve`` on a 300-character transcript takes about 0.1-0.2 ms of CPU (``bench/gazetteer.py``).
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any

import ahocorasick
import yaml
from rapidfuzz.distance import Indel

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["DATA_PATH", "DISTRICTS", "Gazetteer", "Location", "PlaceMatch"]

DATA_PATH = Path(__file__).with_name("rules") / "gazetteer.yaml"

#: the 16 districts of Beijing; the data file may not name any other
DISTRICTS = (
    "东城区", "西城区", "朝阳区", "海淀区", "丰台区", "石景山区", "门头沟区", "房山区", "通州区", "顺义区",
    "昌平区", "大兴区", "怀柔区", "平谷区", "密云区", "延庆区",
)

#: suffixes a street-level name may end with, longest first (the stem is the name without it)
SUFFIXES = ("满族蒙古族乡", "满族乡", "回族乡", "街道", "地区", "镇", "乡")

_ENTRY_KEYS = {"name", "bare", "generic", "aliases", "pinyin", "reject_followed_by", "reject_preceded_by"}
_DISTRICT_KEYS = {"short", "english", "short_needs_context", "reject_followed_by", "reject_preceded_by"}

# Score of a sound-alike match: all syllables equal without tones / equal after merging accents
# (zh-z, n-l, in-ing ...) / one syllable only rhyming, anchored on a literally written suffix.
_SCORE_HOMOPHONE = 0.95
_SCORE_LOOSE = 0.9
_SCORE_NEAR = 0.9

def _words(spaced: str) -> tuple[str, ...]:
    return tuple(spaced.split())


# Characters that never occur inside a place or community name but constantly next to one.
_STOP = frozenset("的了是在我你他她它们这那个吗呢吧啊呀嘛哪谁啥么住咱些每某该就也都还没要想找给让把被从"
                  "说到去")
# In a misheard name 到 stands for 道 (街到) and 去 for 区 (海淀去).
_SOUND_STOP = _STOP - frozenset("到去")
# The short district name that is also an ordinary word counts after/before these.
_CONTEXT_BEFORE = _words("北京市 北京 住在 家在 位于 我们 我家 在 住 是 到 去 来 回")
#: what follows a street name in ordinary speech and sounds like 街道 (the name stays a bare name)
_NOT_SUFFIX = frozenset({"接到", "借到", "解到", "截到"})
#: after a final 区 these make it another word (区域 area, 区别 difference): the 区 is not a district's
_NOT_AFTER_QU = ("域", "别", "分")
_CONTEXT_AFTER = ("区", "这边", "那边", "这块", "那块", "这里", "那里", "这儿", "那儿", "地区", "一带",
                  "附近")

_HAN = re.compile(r"[\u3400-\u9fff]")
_DIGITS = re.compile(r"[0-9]+")
_SHORT_NUMBER = re.compile(r"(?<![0-9])[0-9]{1,2}(?![0-9])")
_FULLWIDTH = re.compile(r"[０-９Ａ-Ｚａ-ｚ\u3000]")
_SPACE = re.compile(r"\s+")
_ANCHOR = re.compile(r"街道|地区|镇|乡|区")
#: the suffixes as heard (街道 / 镇 / 乡 / 地区 in loose pinyin), at a syllable start of the sound string
_SUFFIX_SOUND = re.compile(r"(?<![a-z#])(?:jie\|d[a-z]+\||zen\||xiang\||di\|qu\|)")
_SUFFIX_KEYS = {"街道": "jie|dao|", "镇": "zen|", "乡": "xiang|", "地区": "di|qu|"}
_COMMUNITY_SUFFIX = re.compile(r"社区|村")

_CN_DIGIT = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_DIGIT_READING = ("ling", "yi", "er", "san", "si", "wu", "liu", "qi", "ba", "jiu")
_NEAR_FINALS = (
    {"an", "ang"}, {"ian", "iang"}, {"uan", "uang"}, {"o", "uo"}, {"e", "o"}, {"un", "ong"}, {"ou", "ong"},
)
_INITIAL_GROUPS = (
    frozenset({"b", "p", "d", "t", "g", "k"}), frozenset({"f", "h"}), frozenset({"z", "zh", "j"}),
    frozenset({"c", "ch", "q"}), frozenset({"s", "sh", "x"}), frozenset({"l", "n", "r"}),
    frozenset({"m", "n"}), frozenset({"y", "w", ""}),
)
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z",
             "c", "s", "y", "w")

# Community names: generic words that are not names, and characters a name does not end with.
_GENERIC_COMMUNITY = frozenset(_words(
    "城中 度假 新农 智慧 和谐 文明 老旧 新型 示范 周边 附近 周围 整个 所在 所属 当地 本地 城市 居民 养老 "
    "国际 隔壁 对面 旁边 别的 其他 其它 不同 各个 很多 好多 老 新 大 小 全 本 邻 外"
))
_COMMUNITY_BAD_END = frozenset("农乡山渔邻本全外进回出入下过来走到去留驻包每千万一")
_NOT_AFTER_CUN = tuple("落夫野规姑妇庄容镇寨长舍貌头")
_LEAD_WORDS = _words("北京市 北京 位于 属于 来自 靠近 挨着 隶属 叫做 名叫 叫 就是 原来 以前 现在 小区")

# Address pieces.
_NUM = r"[0-9零〇一二三四五六七八九十百两]+"
_UNITS = rf"(?:{_NUM}(?:号楼|号院|号|栋|幢|单元|层|楼|室)[-之]?)+(?:[0-9]{{2,4}}(?:室|号)?)?"
_ADDRESS_NUMBERS = re.compile(_UNITS)
_ADDRESS_SUFFIX = re.compile(r"(?:家园|花园|公寓|苑)?小区|家园|花园|公寓|大厦|苑|大街|胡同|路|街|巷|院|里")
_ROADS = frozenset({"路", "大街", "街", "胡同"})
_GENERIC_ROAD_END = frozenset("主马小大辅公道土山水条")
_INTRO = frozenset("在住是叫于到自搬进京市")
_ADDRESS_NEEDS_NUMBERS = frozenset({"大街", "胡同", "路", "街", "巷", "院", "里"})
_GENERIC_ADDRESS = frozenset(_words(
    "老旧 老 新 本 整个 对面 隔壁 附近 周边 一个 旁边 很多 其他 别的 各个 "
    "马 道 公 走 一 上 下 半 出 大 铁 水 电 网"
))
_EN_ADDRESS = re.compile(
    r"\b\d{1,6}\s+(?:[A-Z][a-z]+\s+){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway"
    r"|Circle|Square|Highway)\b\.?"
    r"(?:,?\s+(?:Apartment|Apt\.?|Unit|Suite|Room|Flat)\s+[\w-]+)?"
)
_EN_WORD = re.compile(r"[A-Za-z]+")
_EN_TYPES = {"district": "district", "subdistrict": "street", "street": "street", "town": "street",
             "township": "street", "area": "street"}


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
class _Entry:
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
class _Variant:
    """A way of writing one or more entries (two entries share a variant when a name exists twice)."""

    surface: str
    entries: tuple[int, ...]
    rule: str
    bare: bool  # written without its suffix (回龙观, 海淀)
    needs_context: bool = False
    readings: tuple[tuple[str, ...], ...] = ()  # strict toneless syllables, one tuple per reading


@dataclass(frozen=True)
class _Text:
    """A text prepared for matching: simplified, half-width, without whitespace, mapped back to the input."""

    original: str
    norm: str
    index: list[int] | None  # norm position → original position (None: identity)

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.index is None:
            return start, end
        return self.index[start], self.index[end - 1] + 1


@dataclass(frozen=True)
class _Found:
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


@cache
def _pinyin_dict() -> Mapping[int, str]:
    from pypinyin.pinyin_dict import pinyin_dict

    return pinyin_dict


class _CharReadings(dict[str, str]):
    """Character → toneless default reading, filled on first use ("" for characters without one)."""

    def __missing__(self, ch: str) -> str:
        from pypinyin.contrib.tone_convert import to_normal

        raw = _pinyin_dict().get(ord(ch)) if len(ch) == 1 else None
        value = to_normal(raw.split(",")[0]) if raw else ""
        self[ch] = value
        return value


class _LooseTokens(dict[str, str]):
    """Character → ``loose-syllable|`` token for the sound index; characters without a reading, digits
    included, give ``#|``, which no name contains. One ``|`` per character."""

    def __init__(self, readings: _CharReadings) -> None:
        super().__init__()
        self._readings = readings

    def __missing__(self, ch: str) -> str:
        syl = "" if ch.isdigit() else self._readings[ch]
        token = _loose(syl) + "|" if syl else "#|"
        self[ch] = token
        return token


_READINGS = _CharReadings()
_TOKENS = _LooseTokens(_READINGS)


def _loose(syl: str) -> str:
    """Merge the distinctions speech recognisers and accents lose: zh/z ch/c sh/s, n/l, in/ing, en/eng."""
    if syl[:2] in ("zh", "ch", "sh"):
        syl = syl[0] + syl[2:]
    elif syl[:1] == "n":
        syl = "l" + syl[1:]
    if syl.endswith(("eng", "ing")):
        syl = syl[:-1]
    return syl


def _split_syllable(syl: str) -> tuple[str, str]:
    for ini in _INITIALS:
        if syl.startswith(ini) and len(syl) > len(ini):
            return ini, syl[len(ini):]
    return "", syl


def _near(a: str, b: str) -> bool:
    """Two syllables a recogniser confuses: same rhyme with another initial (tai/pai), or an/ang-type."""
    ia, fa = _split_syllable(a)
    ib, fb = _split_syllable(b)
    if fa == fb:  # the initials must be ones heard alike: t/p, zh/j, s/x … (not x/l)
        return any(ia in group and ib in group for group in _INITIAL_GROUPS)
    return ia == ib and {fa, fb} in _NEAR_FINALS


@cache
def _syllable_similarity(a: str, b: str) -> float:
    return float(Indel.normalized_similarity(a, b))


def _stem_score(
    strict: Sequence[str], loose: Sequence[str], stem: Sequence[str], *, lenient: float | None,
) -> float | None:
    """Mean similarity of a written stem to a name's stem, syllable by syllable; None when more than one
    syllable is off, or the one off is too far: it must rhyme, or share ``lenient`` of its letters."""
    total = 0.0
    missed = False
    for got_s, got_l, want in zip(strict, loose, stem, strict=True):
        if got_s == want:
            total += 1.0
        elif got_l == _loose(want):
            total += 0.9
        elif missed or not got_s:
            return None
        else:
            sim = _syllable_similarity(got_s, want)
            if not (_near(got_s, want) or (lenient is not None and sim >= lenient)):
                return None
            missed = True
            total += min(sim, 0.7)
    return total / len(stem) if stem else None


def _number_reading(digits: str) -> list[str] | None:
    """How a run of Arabic digits is read out: 10 → shi, 18 → shi ba, 25 → er shi wu, 301 → san ling yi."""
    if len(digits) > 4:
        return None
    if len(digits) > 2 or digits.startswith("0"):
        return [_DIGIT_READING[int(d)] for d in digits]
    value = int(digits)
    if value < 10:
        return [_DIGIT_READING[value]]
    tens, ones = divmod(value, 10)
    out = ([] if tens == 1 else [_DIGIT_READING[tens]]) + ["shi"]
    return out + ([_DIGIT_READING[ones]] if ones else [])


def _tokens(norm: str) -> list[str]:
    """One sound token per character; a digit run is read as a number, on its last character."""
    toks = [_TOKENS[c] for c in norm]
    for m in _DIGITS.finditer(norm):
        reading = _number_reading(m.group())
        for i in range(m.start(), m.end()):
            toks[i] = ""
        toks[m.end() - 1] = "#|" if reading is None else "".join(_loose(s) + "|" for s in reading)
    return toks


def _strict_syllables(chars: str) -> list[str]:
    out: list[str] = []
    pos = 0
    for m in _DIGITS.finditer(chars):
        out.extend(_READINGS[c] or "#" for c in chars[pos:m.start()])
        out.extend(_number_reading(m.group()) or ["#"])
        pos = m.end()
    out.extend(_READINGS[c] or "#" for c in chars[pos:])
    return out


def _cn_numerals_to_digits(name: str) -> str:
    """十八里店 → 18里店, 三里屯 → 3里屯, 十三陵 → 13陵 (numbers below 100 only)."""

    def convert(m: re.Match[str]) -> str:
        s = m.group()
        if "十" not in s:
            return "".join(str(_CN_DIGIT[c]) for c in s) if len(s) == 1 else s
        head, _, tail = s.partition("十")
        if len(head) > 1 or len(tail) > 1:
            return s
        tens = _CN_DIGIT[head] if head else 1
        ones = _CN_DIGIT[tail] if tail else 0
        return str(tens * 10 + ones)

    return re.sub(r"[一二三四五六七八九十]+", convert, name)


# ----------------------------------------------------------------------------------------------------------
# the gazetteer


class Gazetteer:
    """The places of the data file and the matchers built from them. Build with ``Gazetteer.load()``."""

    _cache: dict[tuple[str, int], Gazetteer] = {}

    def __init__(self, data: Mapping[str, Any], *, source: str = "<data>") -> None:
        self.source = source
        self.version, self.entries, self.variants = _build(data, source)
        self._exact = ahocorasick.Automaton()
        for vid, v in enumerate(self.variants):
            self._exact.add_word(v.surface, vid)
        self._exact.make_automaton()
        self._sound = self._sound_automaton()
        self._near = self._near_index()
        self._streets_by_sound = self._district_index()
        self._english = _english_index(self.entries, data)
        self._short_needs_context = {
            str(name): bool(info.get("short_needs_context")) for name, info in data["districts"].items()
        }
        self._t2s_chars, self._t2s_map = _t2s_tables()

    def _sound_automaton(self) -> Any:
        """Loose pinyin of every full name and long bare name → (pattern length, variants)."""
        by_key: dict[str, list[int]] = {}
        for vid, v in enumerate(self.variants):
            if _sound_eligible(v, self.entries):
                for reading in v.readings:
                    by_key.setdefault("".join(_loose(s) + "|" for s in reading), []).append(vid)
        automaton = ahocorasick.Automaton()
        for key, vids in by_key.items():
            automaton.add_word(key, (len(key), tuple(vids)))
        automaton.make_automaton()
        return automaton

    def _near_index(self) -> dict[str, dict[int, dict[tuple[int, str], list[tuple[int, tuple[str, ...]]]]]]:
        """Written suffix → stem length → (position, loose syllable) → (variant, stem reading)."""
        index: dict[str, dict[int, dict[tuple[int, str], list[tuple[int, tuple[str, ...]]]]]] = {}
        for vid, v in enumerate(self.variants):
            if v.bare or not v.readings or not all(_HAN.match(c) for c in v.surface):
                continue
            suffix = next((s for s in ("街道", "地区", "镇", "乡", "区") if v.surface.endswith(s)), None)
            if suffix is None:
                continue
            stem_len = len(v.surface) - len(suffix)
            if stem_len < 2 or (stem_len == 2 and suffix == "地区"):  # 亚太地区, 沿海地区 are not 大台地区
                continue
            for reading in v.readings:
                stem = reading[:stem_len]
                by_pos = index.setdefault(suffix, {}).setdefault(stem_len, {})
                for i, syl in enumerate(stem):
                    by_pos.setdefault((i, _loose(syl)), []).append((vid, stem))
        return index

    def _district_index(self) -> dict[tuple[str, str], dict[int, list[tuple[int, tuple[str, ...]]]]]:
        """(district, heard suffix) → stem length → (variant, stem reading): the streets of one district."""
        index: dict[tuple[str, str], dict[int, list[tuple[int, tuple[str, ...]]]]] = {}
        for vid, v in enumerate(self.variants):
            if v.bare or not v.readings or self.entries[v.entries[0]].kind != "street" \
                    or not all(_HAN.match(c) for c in v.surface):
                continue
            suffix = next((x for x in _SUFFIX_KEYS if v.surface.endswith(x)), None)
            stem_len = len(v.surface) - len(suffix or "")
            if suffix is None or stem_len < 2:
                continue
            for reading in v.readings:
                for district in {self.entries[e].district for e in v.entries}:
                    by_len = index.setdefault((district, _SUFFIX_KEYS[suffix]), {})
                    by_len.setdefault(stem_len, []).append((vid, reading[:stem_len]))
        return index

    # -- loading -------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> Gazetteer:
        """Load (once per file and modification time) and validate a gazetteer data file.

        ``path`` defaults to the bundled ``rules/gazetteer.yaml``. Raises ``ConfigError`` naming the file
        and the problem when the file is missing, not YAML, or its contents are inconsistent (a district
        that is not one of Beijing's 16, a name listed twice in a district, an entry without a name ...).

        Example: ``Gazetteer.load().version`` → ``'2024.11-2'``.
        """
        p = Path(path) if path is not None else DATA_PATH
        try:
            key = (str(p.resolve()), p.stat().st_mtime_ns)
        except OSError as exc:
            raise ConfigError(f"gazetteer file {p} cannot be read: {exc}") from exc
        hit = cls._cache.get(key)
        if hit is not None:
            return hit
        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            data = yaml.load(p.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"gazetteer file {p} is not readable YAML: {exc}") from exc
        gaz = cls(data, source=str(p))
        cls._cache[key] = gaz
        log.info("gazetteer %s loaded from %s: %d places, %d written forms", gaz.version, p,
                 len(gaz.entries), len(gaz.variants))
        return gaz

    # -- matching ------------------------------------------------------------------------------------------

    def find(self, text: str, *, language: str = "zh") -> list[PlaceMatch]:
        """Every district, street/town and community named in ``text``, in text order.

        Exact names and aliases win over sound-alike recoveries; a name that exists in two districts
        (八里庄街道) gives one match per district, with the same span. With ``language="en"`` English
        forms (Chaoyang District, Wangjing) are found too. Addresses are not places: see ``resolve``.

        Example: ``find("海电区中官村")`` → [海淀区 (pinyin, 0.95), 中关村街道 (pinyin, 0.95)].
        """
        prepared = self._prepare(text)
        found = self._find_places(prepared)
        found += self._find_communities(prepared, found)
        out = [m for f in found for m in self._to_matches(prepared, f)]
        if language == "en" and _EN_WORD.search(text):
            taken = [(m.start, m.end) for m in out]
            out += [m for m in self._find_english(text) if not _overlaps_any(m.start, m.end, taken)]
        out.sort(key=lambda m: (m.start, -m.end))
        return out

    def resolve(self, text: str, *, language: str = "zh") -> Location:
        """The caller's district, street, community and address from ``text`` (the caller's words).

        - the district is the one said; if none is said it is inferred from the street
          (``district_inferred``); a street that belongs to another district than the one said is kept and
          flagged in ``conflict``; a street name found in two districts takes the one said;
        - the street is the first one said (preferring one in the said district); 回龙观 alone counts;
        - the community is the first …社区/…村 name, preferring one after the street;
        - the address is what follows the place: 金隅小区3号楼2单元, 西街十八号, 42 Maple Avenue.
        Nothing found → all None and confidence 0.0.

        Example: ``resolve("海淀区和平街街道")`` → district 海淀区, street 和平街街道, conflict
        'street 和平街街道 belongs to 朝阳区, caller said 海淀区'.
        """
        prepared = self._prepare(text)
        found = self._find_places(prepared)
        found += self._find_communities(prepared, found)
        matches = [m for f in found for m in self._to_matches(prepared, f)]
        if language == "en" and _EN_WORD.search(text):
            taken = [(m.start, m.end) for m in matches]
            matches += [m for m in self._find_english(text) if not _overlaps_any(m.start, m.end, taken)]
        matches.sort(key=lambda m: (m.start, -m.end))
        return self._resolve(prepared, matches, language)

    # -- internals: text preparation ------------------------------------------------------------------------

    def _prepare(self, text: str) -> _Text:
        norm = text
        if self._t2s_chars.search(norm):
            converted = _t2s().convert(norm)
            if len(converted) != len(norm):  # a phrase conversion changed the length: go char by char
                converted = norm.translate(self._t2s_map)
            norm = converted
        if _FULLWIDTH.search(norm):  # full-width digits and letters → ASCII, one for one
            norm = _FULLWIDTH.sub(_halfwidth, norm)
        if not _SPACE.search(norm):
            return _Text(text, norm, None)
        index = [i for i, c in enumerate(norm) if not c.isspace()]
        return _Text(text, "".join(norm[i] for i in index), index)

    # -- internals: places ---------------------------------------------------------------------------------

    def _find_places(self, t: _Text) -> list[_Found]:
        norm = t.norm
        found: list[_Found] = []
        deferred: list[_Found] = []  # short forms that need context: they count right before a place too
        for end_incl, vid in self._exact.iter_long(norm):
            v = self.variants[vid]
            start, end = end_incl + 1 - len(v.surface), end_incl + 1
            entries = tuple(e for e in v.entries
                            if not _rejected(norm, start, end, self.entries[e]))
            if not entries:
                continue
            f = _Found(start, end, vid, entries, 1.0, v.rule)
            if v.needs_context and not _in_context(norm, start, end, found):
                deferred.append(f)
            else:
                found.append(f)
        starts_at = {f.start for f in found}
        found += [f for f in deferred if f.end in starts_at]
        taken = [(f.start, f.end) for f in found]
        if not _has_han(norm):
            return found
        sound = "".join(map(_TOKENS.__getitem__, norm))
        cands: list[tuple[int, int, tuple[int, ...]]] = []
        for end_incl, (key_len, vids) in self._sound.iter(sound):
            s_pos = end_incl + 1 - key_len
            if s_pos and sound[s_pos - 1] != "|":
                continue  # not on a syllable boundary
            cands.append((sound.count("|", 0, s_pos), sound.count("|", 0, end_incl + 1), vids))
        for m in _SHORT_NUMBER.finditer(norm):  # a number said for a syllable: 东花10街道
            cands += self._sound_around_number(norm, m.start(), m.end())
        cands.sort(key=lambda c: (c[0] - c[1], c[0]))  # longest first, then leftmost
        for cs, ce, vids in cands:
            clash = [f for f in found if f.start < ce and cs < f.end]
            if any(not (self._extends(norm, f, cs, ce, vids) or self._inside(f, cs, ce)) for f in clash):
                continue
            best = self._verify_sound(norm, cs, ce, vids, found)
            if best is None:
                continue
            vid, score = best
            if clash and score < _SCORE_HOMOPHONE:
                continue  # extend a bare name only by what sounds exactly like its suffix
            found = [f for f in found if f not in clash]
            found.append(_Found(cs, ce, vid, self.variants[vid].entries, score, "gazetteer.pinyin"))
        taken = [(f.start, f.end) for f in found]
        for m in _ANCHOR.finditer(norm):
            if _overlaps_any(m.start(), m.end(), taken) or norm.startswith(_NOT_AFTER_QU, m.end()):
                continue
            near = self._near_miss(norm, m.start(), m.group(), taken)
            if near is not None:
                found.append(near)
                taken.append((near.start, near.end))
        kinds = [self.entries[f.entries[0]] for f in found if f.entries]
        said = {e.district for e in kinds if e.kind == "district"}
        if said and not any(e.kind == "street" for e in kinds):
            found += self._in_district(norm, sound, said, taken)
        found.sort(key=lambda f: f.start)
        return found

    def _sound_around_number(self, norm: str, start: int, end: int) -> list[tuple[int, int, tuple[int, ...]]]:
        lo, hi = max(0, start - 6), min(len(norm), end + 6)
        toks = _tokens(norm[lo:hi])
        starts = list(accumulate(map(len, toks), initial=0))
        sound = "".join(toks)
        out = []
        for end_incl, (key_len, vids) in self._sound.iter(sound):
            s_pos = end_incl + 1 - key_len
            if s_pos and sound[s_pos - 1] != "|":
                continue
            cs, ce = lo + bisect_left(starts, s_pos), lo + bisect_left(starts, end_incl + 1)
            if cs < ce and cs <= start and end <= ce:
                out.append((cs, ce, vids))
        return out

    def _inside(self, f: _Found, cs: int, ce: int) -> bool:
        """A shorter office name inside a longer one that sounds exactly like the whole (平果园街道 is
        苹果园街道 misheard, not 平 + 果园街道)."""
        return cs <= f.start and f.end <= ce and (f.start, f.end) != (cs, ce) \
            and all(self.entries[e].kind == "street" for e in f.entries)

    def _extends(self, norm: str, f: _Found, cs: int, ce: int, vids: Sequence[int]) -> bool:
        """A sound match may replace a bare name it contains when it adds the misheard suffix of the
        same place (永顺 + 真 → 永顺镇), but not an ordinary word after it (回龙观 + 接到)."""
        if f.variant is None or not self.variants[f.variant].bare or not (cs <= f.start and f.end <= ce):
            return False
        extra = norm[cs:f.start] + norm[f.end:ce]
        if not extra or extra in _NOT_SUFFIX:
            return False
        return any(set(f.entries) & set(self.variants[v].entries) for v in vids)

    def _verify_sound(self, norm: str, cs: int, ce: int, vids: Sequence[int],
                      found: Sequence[_Found]) -> tuple[int, float] | None:
        """Accept a sound-alike window: same syllables, a character in common with the name, no stop word."""
        window = norm[cs:ce]
        stops = sum(c in _SOUND_STOP for c in window)
        if stops > 1 or (stops and len(window) < 4):
            return None  # a stop word inside only in a long name (东华们街道), never in 他们说真
        if window[-1] == "区" and norm.startswith(_NOT_AFTER_QU, ce):
            return None
        strict = tuple(_strict_syllables(window))
        best: tuple[int, float] | None = None
        for vid in vids:
            v = self.variants[vid]
            common = len(set(window) & set(v.surface))
            if window == v.surface or common < 2 + stops:  # two characters as written, three past a stop
                continue
            entry = self.entries[v.entries[0]]
            if entry.kind == "district" and window.startswith(entry.stem) and window.endswith("去") and \
                    self._short_needs_context.get(entry.name) and \
                    not _in_context(norm, cs, cs + len(entry.stem), found):
                continue  # 朝阳去 is "go towards the morning sun" unless the context says place
            k = _suffix_syllables(v.surface)
            if k and not any(strict[-k:] == r[-k:] for r in v.readings):
                continue  # the suffix must sound exactly right: 河北正在… is not 河北镇
            score = _SCORE_HOMOPHONE if strict in v.readings else _SCORE_LOOSE
            if best is None or score > best[1]:
                best = (vid, score)
        return best

    def _near_miss(self, norm: str, anchor: int, suffix: str, taken: list[tuple[int, int]]) -> _Found | None:
        """A name with one stem syllable misheard (锋排区 → 丰台区, 北太平张街道 → 北太平庄街道), only
        before a suffix written as such. Two-syllable stems need the misheard syllable to rhyme (排/台)."""
        by_len = self._near.get(suffix)
        if not by_len:
            return None
        best: _Found | None = None
        for n, candidates in by_len.items():
            start = anchor - n
            if start < 0 or _overlaps_any(start, anchor, taken):
                continue
            window = norm[start:anchor]
            if not all(_name_char(c) for c in window):
                continue
            strict = [_READINGS[c] for c in window]
            loose = [_loose(s) if s else "#" for s in strict]
            hits: dict[tuple[int, tuple[str, ...]], int] = {}
            for i, syl in enumerate(loose):
                for item in candidates.get((i, syl), ()):
                    hits[item] = hits.get(item, 0) + 1
            for (vid, stem), count in hits.items():
                if count < n - 1:
                    continue
                if suffix != "区" and not set(window) & set(self.variants[vid].surface[:n]):
                    continue  # a street needs one stem character as written (相应乡 is not 香营乡)
                mean = _stem_score(strict, loose, stem, lenient=0.6 if n >= 3 else None)
                if mean is None or mean < 0.75:
                    continue
                if n == 2 and not any(a == b for a, b in zip(strict, stem, strict=True)):
                    continue  # 锋排区: one syllable exactly right, the other rhyming (产品区 is neither)
                score = round(_SCORE_NEAR * mean, 3)
                if best is None or score > best.score or (score == best.score and n > best.end - best.start):
                    v = self.variants[vid]
                    best = _Found(start, anchor + len(suffix), vid, v.entries, score, "gazetteer.pinyin")
        return best

    def _in_district(
        self, norm: str, sound: str, said: set[str], taken: list[tuple[int, int]],
    ) -> list[_Found]:
        """Streets of a district the caller named, misheard in the stem and the suffix alike
        (通州区宋当阵 → 宋庄镇): few candidates, so one syllable may be off."""
        out: list[_Found] = []
        for m in _SUFFIX_SOUND.finditer(sound):
            anchor = sound.count("|", 0, m.start())
            end = anchor + m.group().count("|")
            if _overlaps_any(anchor, end, taken):
                continue
            heard = m.group()
            exact_suffix = heard != "jie|" + heard[4:] or heard == "jie|dao|"
            if not exact_suffix:  # 街道 heard as 街等 / 街段: then the stem must sound right throughout
                heard = "jie|dao|"
            best: _Found | None = None
            for district in sorted(said):
                for n, candidates in self._streets_by_sound.get((district, heard), {}).items():
                    start = anchor - n
                    if start < 0 or _overlaps_any(start, anchor, taken):
                        continue
                    window = norm[start:anchor]
                    if not all(_name_char(c) for c in window):
                        continue
                    strict = [_READINGS[c] for c in window]
                    loose = [_loose(s) if s else "#" for s in strict]
                    for vid, stem in candidates:
                        mean = _stem_score(strict, loose, stem, lenient=0.5 if exact_suffix else None)
                        if mean is None or mean < (0.7 if exact_suffix else 0.9):
                            continue
                        score = round(_SCORE_NEAR * 0.9 * mean, 3)
                        if best is None or score > best.score:
                            entries = tuple(e for e in self.variants[vid].entries
                                            if self.entries[e].district == district)
                            best = _Found(start, end, vid, entries, score, "gazetteer.pinyin")
            if best is not None:
                out.append(best)
                taken.append((best.start, best.end))
        return out

    # -- internals: communities ---------------------------------------------------------------------------

    def _find_communities(self, t: _Text, places: list[_Found]) -> list[_Found]:
        norm = t.norm
        out: list[_Found] = []
        for m in _COMMUNITY_SUFFIX.finditer(norm):
            p, q = m.start(), m.end()
            if any(f.start < q and p < f.end for f in places):
                continue  # the 村 of 中关村, 崔村镇 …
            if m.group() == "村" and norm.startswith(_NOT_AFTER_CUN, q):
                continue  # 村落, 村夫, 村庄: the word village, not a village's name
            limit = 8 if m.group() == "社区" else 5
            lo = max((f.end for f in places if f.end <= p), default=0)
            start = p
            while start > lo and p - start < limit + 3 and _name_char(norm[start - 1]):
                start -= 1
            if start > lo and _name_char(norm[start - 1]):
                continue  # no word or place before it: where the name begins is anyone's guess
            start = _strip_lead(norm, start, p)
            before = next((f for f in places if f.end == start and f.start < start), None)
            if before is not None and before.variant is not None and self.variants[before.variant].bare \
                    and self.entries[before.entries[0]].kind == "street" \
                    and (start == p or p - start <= 2 or norm[start] in "东西南北"):
                start = before.start  # 西红门村, 上地西里社区: named after the place they are in
            name = norm[start:p]
            if len(name) > limit or not _community_name_ok(name):
                continue
            out.append(_Found(start, q, None, (), 1.0, "community.pattern", kind="community",
                              name=name + m.group()))
        return out

    # -- internals: English ---------------------------------------------------------------------------------

    def _find_english(self, text: str) -> list[PlaceMatch]:
        """Pinyin names in English speech: "Chaoyang District", "Wangjing", "Heping Jie Subdistrict"."""
        words = [(m.start(), m.end(), m.group()) for m in _EN_WORD.finditer(text)]
        lows = [w[2].lower() for w in words]
        index = self._english
        out: list[PlaceMatch] = []
        i = 0
        while i < len(words):
            k = 0
            if i + 1 < len(words) and text[words[i][1]:words[i + 1][0]] in (" ", "-") \
                    and lows[i] + lows[i + 1] in index:
                k, key = 2, lows[i] + lows[i + 1]
            elif lows[i] in index:
                k, key = 1, lows[i]
            if not k:
                i += 1
                continue
            first, last = words[i], words[i + k - 1]
            type_word = None
            if i + k < len(words) and text[last[1]:words[i + k][0]] == " ":
                type_word = _EN_TYPES.get(lows[i + k])
            end = words[i + k][1] if type_word else last[1]
            made = False
            for kind, eid, bare_ok in index[key]:
                if type_word is not None and type_word != kind:
                    continue
                if type_word is None and not (first[2][0].isupper() and bare_ok):
                    continue
                e = self.entries[eid]
                out.append(PlaceMatch(kind, e.name, e.district, first[0], end, text[first[0]:end], 1.0,
                                      "gazetteer.english"))
                made = True
            i += k + (1 if made and type_word else 0)
        return out

    # -- internals: results ---------------------------------------------------------------------------------

    def _to_matches(self, t: _Text, f: _Found) -> list[PlaceMatch]:
        start, end = t.span(f.start, f.end)
        surface = t.original[start:end]
        if f.kind == "community":
            return [PlaceMatch("community", f.name, None, start, end, surface, f.score, f.rule)]
        out = []
        for eid in f.entries:
            e = self.entries[eid]
            rule = f.rule
            if rule != "gazetteer.pinyin":
                exact = self.variants[f.variant or 0].surface == e.name
                rule = "gazetteer.exact" if exact else "gazetteer.alias"
            out.append(PlaceMatch(e.kind, e.name, e.district, start, end, surface, f.score, rule))
        return out

    def _resolve(self, t: _Text, matches: list[PlaceMatch], language: str) -> Location:
        districts = [m for m in matches if m.kind == "district"]
        communities = [m for m in matches if m.kind == "community"]
        said = list(dict.fromkeys(m.name for m in districts))
        groups: list[list[PlaceMatch]] = []  # streets sharing a span: one mention, several readings
        for m in (m for m in matches if m.kind == "street"):
            if groups and (groups[-1][0].start, groups[-1][0].end) == (m.start, m.end):
                groups[-1].append(m)
            else:
                groups.append([m])

        used: list[PlaceMatch] = []
        district: str | None = None
        street: str | None = None
        inferred = False
        conflict: str | None = None
        factor = 1.0
        chosen: PlaceMatch | None = None
        group: list[PlaceMatch] = []
        for g in groups:
            inside = [m for m in g if m.district in said]
            if inside:
                chosen, group = inside[0], inside
                break
        if chosen is None and groups:
            group = groups[0]
            chosen = group[0]
        if chosen is not None:
            homes = list(dict.fromkeys(m.district for m in group if m.district))
            if len({m.name for m in group}) == 1:
                street = chosen.name
            else:  # 天通苑: two offices share the name people use
                factor *= 0.8
            if chosen.district in said:
                district = chosen.district
                used.append(next(d for d in districts if d.name == district))
            elif said:
                district = said[0]
                used.append(districts[0])
                conflict = f"street {chosen.name} belongs to {' / '.join(homes)}, caller said {district}"
                factor *= 0.6
            elif len(homes) == 1:
                district = homes[0]
                inferred = True
                factor *= 0.95
            else:  # 八里庄街道 exists in 朝阳区 and 海淀区, and neither was said
                factor *= 0.8
            used.append(chosen)
        elif districts:
            best = max(districts, key=lambda m: m.score)  # the first of the surest
            district = best.name
            used.append(best)

        community: PlaceMatch | None = None
        if communities:
            after = [c for c in communities if chosen is not None and c.start >= chosen.start]
            community = (after or communities)[0]
            used.append(community)

        anchor_end = max((m.end for m in used if m.kind in ("street", "community")), default=None)
        address = self._address(t, matches, anchor_end, language)
        if address is not None:
            used.append(address)
        if not used:
            return Location(None, None, None, None)
        used.sort(key=lambda m: m.start)
        return Location(
            district=district, street=street,
            community=community.name if community else None,
            address=address.name if address else None,
            matches=tuple(dict.fromkeys(used)), district_inferred=inferred, conflict=conflict,
            confidence=round(min(m.score for m in used) * factor, 3),
        )

    def _address(self, t: _Text, matches: list[PlaceMatch], anchor_end: int | None,
                 language: str) -> PlaceMatch | None:
        """The address remainder: a compound or road with numbers, or numbers right after a place."""
        if language == "en":
            m = _EN_ADDRESS.search(t.original)
            if m is not None:
                value = m.group().rstrip(".")
                return PlaceMatch("address", value, None, m.start(), m.start() + len(value), value, 1.0,
                                  "address.en")
        norm = t.norm
        back = {o: n for n, o in enumerate(t.index)} if t.index is not None else None

        def to_norm(start: int, end: int) -> tuple[int, int]:
            if back is None:
                return start, end
            return back[start], back[end - 1] + 1

        places = [m for m in matches if m.kind != "address" and m.end > m.start]
        spans = [to_norm(m.start, m.end) for m in places]
        ends = {e for _, e in spans}
        # a bare place name can begin a road or compound name: 中关村大街27号, 望京西园三区
        bare_ends = {e: s for (s, e), m in zip(spans, places, strict=True)
                     if m.kind in ("district", "street") and m.rule == "gazetteer.alias"
                     and not m.surface.endswith(SUFFIXES + ("区",))}
        cands: list[tuple[int, int]] = []
        floor = 0
        for m in _ADDRESS_SUFFIX.finditer(norm):
            p, q = m.start(), m.end()
            if p < floor or _overlaps_any(p, q, spans):
                continue
            lo = max([e for _, e in spans if e <= p] + [floor])
            start = p
            while start > lo and p - start < 8 and _name_char(norm[start - 1]):
                start -= 1
            if start > lo and _name_char(norm[start - 1]):
                continue  # where the name begins is unclear
            start = _strip_lead(norm, start, p)
            adjacent, gap = start in ends, p - start
            nums = _ADDRESS_NUMBERS.match(norm, q)
            if start in bare_ends:
                if start == p and nums is None:
                    continue  # 大峪街: the place itself said short, not an address
                start = bare_ends[start]
            name = norm[start:p]
            if not name or name in _GENERIC_ADDRESS:
                continue
            if m.group() in _ADDRESS_NEEDS_NUMBERS and nums is None:
                # a road without a number counts only right after the place (永顺镇西大街), not 那条主路
                if not (adjacent and gap <= 3 and len(name + m.group()) >= 3 and m.group() in _ROADS) \
                        or name[-1] in _GENERIC_ROAD_END:
                    continue
            elif nums is None and (len(name) < 2 or not (adjacent or _introduced(norm, start))):
                continue  # 昨天暴雨小区门口: a compound without a number must be introduced (住在…, 是…)
            end = nums.end() if nums else q
            cands.append((start, end))
            floor = end
        for e in ends:
            nums = _ADDRESS_NUMBERS.match(norm, e)
            if nums is not None and not any(s <= e < c_end for s, c_end in cands):
                cands.append((e, nums.end()))
        if not cands:
            return None
        cands.sort()
        pick: tuple[int, int] | None = None
        if anchor_end is not None:
            anchor = to_norm(anchor_end - 1, anchor_end)[1]
            pick = next((c for c in cands if c[0] >= anchor), None)
        start, end = pick or cands[0]
        for s, e in cands:  # pieces that continue it: 幸福路3号院 + 金隅小区2号楼
            if s == end:
                end = e
        o_start, o_end = t.span(start, end)
        return PlaceMatch("address", norm[start:end], None, o_start, o_end, t.original[o_start:o_end], 1.0,
                          "address.pattern")


# ----------------------------------------------------------------------------------------------------------
# helpers


def _name_char(c: str) -> bool:
    return c not in _STOP and _HAN.match(c) is not None


def _halfwidth(m: re.Match[str]) -> str:
    return " " if m.group() == "\u3000" else chr(ord(m.group()) - 0xFEE0)


def _has_han(s: str) -> bool:
    return _HAN.search(s) is not None


def _overlaps_any(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)


def _rejected(norm: str, start: int, end: int, entry: _Entry) -> bool:
    """The words around show the name is part of something else: 张镇长, 大兴安岭, 正本清源."""
    return any(norm.startswith(f, end) for f in entry.reject_followed_by) or \
        any(norm.endswith(b, 0, start) for b in entry.reject_preceded_by)


def _in_context(norm: str, start: int, end: int, found: Sequence[_Found]) -> bool:
    if any(norm.startswith(a, end) for a in _CONTEXT_AFTER):
        return True
    if any(norm.endswith(b, 0, start) for b in _CONTEXT_BEFORE):
        return True
    return any(f.end == start for f in found)


def _suffix_syllables(surface: str) -> int:
    if surface.endswith(("街道", "地区")):
        return 2
    return 1 if surface.endswith(("镇", "乡", "区")) else 0


def _introduced(norm: str, start: int) -> bool:
    """The name at ``start`` follows a word that introduces a place: 住在…, 我们是…, 位于…, 叫…."""
    return start > 0 and norm[start - 1] in _INTRO


def _strip_lead(norm: str, start: int, end: int) -> int:
    """Start a name after the words that lead into it: 北京市…, 位于…, 叫…, 小区位于…."""
    for word in _LEAD_WORDS:
        i = norm.rfind(word, start, end)
        if i >= 0 and end - (i + len(word)) >= 2:
            start = i + len(word)
    return start


def _community_name_ok(name: str) -> bool:
    if len(name) < 2 or name in _GENERIC_COMMUNITY or name[-1] in _COMMUNITY_BAD_END:
        return False
    if name.endswith(("度假", "城中", "新农", "儿童", "养老", "智慧")):
        return False
    return not any(name.startswith(g) and len(name) - len(g) < 2 for g in ("这个", "那个", "整个", "一个"))


def _sound_eligible(v: _Variant, entries: Sequence[_Entry]) -> bool:
    """Forms recovered by sound: full names, and bare forms of three or more characters."""
    if not v.readings:
        return False
    if v.bare:
        return len(v.surface) >= 3 and not v.needs_context and entries[v.entries[0]].kind == "street"
    return True


@cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@cache
def _t2s_tables() -> tuple[re.Pattern[str], dict[int, str]]:
    """The characters t2s changes, and their one-character conversions (used when lengths differ)."""
    chars = [chr(c) for c in range(0x3400, 0xA000)]
    converted = _t2s().convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - OpenCC keeps newlines
        raise ConfigError("OpenCC t2s did not keep one line per character")
    table = {ord(a): b for a, b in zip(chars, converted, strict=True) if a != b and len(b) == 1}
    return re.compile("[" + "".join(sorted(chr(c) for c in table)) + "]"), table


def _english_index(
    entries: Sequence[_Entry], data: Mapping[str, Any],
) -> dict[str, list[tuple[str, int, bool]]]:
    """Lower-case joined pinyin → (kind, entry, counts without a type word)."""
    from pypinyin import lazy_pinyin

    overrides = _overrides(data)
    index: dict[str, list[tuple[str, int, bool]]] = {}
    for eid, e in enumerate(entries):
        if e.kind == "district":
            english = str(data["districts"][e.name].get("english") or "")
            spoken = "".join(_name_readings(e.stem, overrides, lazy_pinyin)[0])
            keys = {english.lower().replace(" ", ""), spoken}
            for key in keys:
                if key:
                    index.setdefault(key, []).append(("district", eid, True))
        else:
            key = "".join(_name_readings(e.stem, overrides, lazy_pinyin)[0])
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


def _name_readings(name: str, overrides: Mapping[str, list[list[str]]], lazy_pinyin: Any) -> list[list[str]]:
    """Readings of a name: pypinyin's phrase reading with the data file's overrides applied, then the
    character-by-character default reading (how a recogniser's text of the same characters reads)."""
    base = [p if p else "#" for p in lazy_pinyin(name, errors=lambda chars: ["#"] * len(chars))]
    if len(base) != len(name):
        base = [_READINGS[c] or "#" for c in name]
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
    per_char = [_READINGS[c] or "#" for c in name]
    if per_char not in readings:
        readings.append(per_char)
    return readings


def _str_list(spec: Mapping[str, Any], key: str, bad: Any, where: str) -> tuple[str, ...]:
    value = spec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad(f"district {where}: '{key}' must be a list of words")
    return tuple(value)


def _build(data: Any, source: str) -> tuple[str, tuple[_Entry, ...], tuple[_Variant, ...]]:
    """Validate the data file and expand it into entries and written forms."""
    from pypinyin import lazy_pinyin

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

    entries: list[_Entry] = []
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
        entries.append(_Entry("district", dname, dname, short,
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
            entries.append(_Entry("street", name, dname, stem, generic,
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
        digits = _cn_numerals_to_digits(surface)
        if digits != surface and digits not in variants:
            slot = variants[surface]
            for eid in slot["entries"]:
                add(digits, eid, "gazetteer.alias", bare=slot["bare"], needs_context=slot["ctx"])

    out: list[_Variant] = []
    for surface, slot in variants.items():
        readings: tuple[tuple[str, ...], ...] = ()
        if all(_HAN.match(c) or c.isdigit() for c in surface):
            if any(c.isdigit() for c in surface):
                readings = (tuple(_strict_syllables(surface)),)
            else:
                readings = tuple(tuple(r) for r in _name_readings(surface, overrides, lazy_pinyin))
        out.append(_Variant(surface, tuple(slot["entries"]), slot["rule"], slot["bare"], slot["ctx"],
                            readings))
    return str(version), tuple(entries), tuple(out)
