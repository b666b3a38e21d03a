"""The parts of a place below the street: community names (…社区, …村) and the address remainder.

Communities are found by pattern, never generic ones (农村, 这个社区, 城中村); the address is what follows
the place: a compound or road with numbers (金隅小区3号楼2单元, 西街十八号), or numbers right after a
place; in English speech a house number and street (42 Maple Avenue).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pipeline.extractors.gazetteer.data import SUFFIXES, Candidate, Entry, PlaceMatch, PreparedText, Variant
from pipeline.text.chinese import HAN


def words(spaced: str) -> tuple[str, ...]:
    return tuple(spaced.split())

# Characters that never occur inside a place or community name but constantly next to one.
STOP = frozenset("的了是在我你他她它们这那个吗呢吧啊呀嘛哪谁啥么住咱些每某该就也都还没要想找给让把被从"
                  "说到去")

_COMMUNITY_SUFFIX = re.compile(r"社区|村")

# Community names: generic words that are not names, and characters a name does not end with.
_GENERIC_COMMUNITY = frozenset(words(
    "城中 度假 新农 智慧 和谐 文明 老旧 新型 示范 周边 附近 周围 整个 所在 所属 当地 本地 城市 居民 养老 "
    "国际 隔壁 对面 旁边 别的 其他 其它 不同 各个 很多 好多 老 新 大 小 全 本 邻 外"
))

_COMMUNITY_BAD_END = frozenset("农乡山渔邻本全外进回出入下过来走到去留驻包每千万一")

_NOT_AFTER_CUN = tuple("落夫野规姑妇庄容镇寨长舍貌头")

_LEAD_WORDS = words("北京市 北京 位于 属于 来自 靠近 挨着 隶属 叫做 名叫 叫 就是 原来 以前 现在 小区")

# Address pieces.
_NUM = r"[0-9零〇一二三四五六七八九十百两]+"

_UNITS = rf"(?:{_NUM}(?:号楼|号院|号|栋|幢|单元|层|楼|室)[-之]?)+(?:[0-9]{{2,4}}(?:室|号)?)?"

_ADDRESS_NUMBERS = re.compile(_UNITS)

_ADDRESS_SUFFIX = re.compile(r"(?:家园|花园|公寓|苑)?小区|家园|花园|公寓|大厦|苑|大街|胡同|路|街|巷|院|里")

_ROADS = frozenset({"路", "大街", "街", "胡同"})

_GENERIC_ROAD_END = frozenset("主马小大辅公道土山水条")

_INTRO = frozenset("在住是叫于到自搬进京市")

_ADDRESS_NEEDS_NUMBERS = frozenset({"大街", "胡同", "路", "街", "巷", "院", "里"})

_GENERIC_ADDRESS = frozenset(words(
    "老旧 老 新 本 整个 对面 隔壁 附近 周边 一个 旁边 很多 其他 别的 各个 "
    "马 道 公 走 一 上 下 半 出 大 铁 水 电 网"
))

_EN_ADDRESS = re.compile(
    r"\b\d{1,6}\s+(?:[A-Z][a-z]+\s+){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway"
    r"|Circle|Square|Highway)\b\.?"
    r"(?:,?\s+(?:Apartment|Apt\.?|Unit|Suite|Room|Flat)\s+[\w-]+)?"
)




def find_communities(t: PreparedText, places: list[Candidate], variants: Sequence[Variant],
                     entries: Sequence[Entry]) -> list[Candidate]:
    """Community names by pattern (…社区, …村) outside the places already found, in the prepared text."""
    norm = t.norm
    out: list[Candidate] = []
    for m in _COMMUNITY_SUFFIX.finditer(norm):
        p, q = m.start(), m.end()
        if any(f.start < q and p < f.end for f in places):
            continue  # the 村 of 中关村, 崔村镇 …
        if m.group() == "村" and norm.startswith(_NOT_AFTER_CUN, q):
            continue  # 村落, 村夫, 村庄: the word village, not a village's name
        limit = 8 if m.group() == "社区" else 5
        lo = max((f.end for f in places if f.end <= p), default=0)
        start = p
        while start > lo and p - start < limit + 3 and name_char(norm[start - 1]):
            start -= 1
        if start > lo and name_char(norm[start - 1]):
            continue  # no word or place before it: where the name begins is anyone's guess
        start = strip_lead(norm, start, p)
        before = next((f for f in places if f.end == start and f.start < start), None)
        if before is not None and before.variant is not None and variants[before.variant].bare \
                and entries[before.entries[0]].kind == "street" \
                and (start == p or p - start <= 2 or norm[start] in "东西南北"):
            start = before.start  # 西红门村, 上地西里社区: named after the place they are in
        name = norm[start:p]
        if len(name) > limit or not _community_name_ok(name):
            continue
        out.append(Candidate(start, q, None, (), 1.0, "community.pattern", kind="community",
                          name=name + m.group()))
    return out

# -- internals: English ---------------------------------------------------------------------------------

def find_address(t: PreparedText, matches: list[PlaceMatch], anchor_end: int | None,
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
        if p < floor or overlaps_any(p, q, spans):
            continue
        lo = max([e for _, e in spans if e <= p] + [floor])
        start = p
        while start > lo and p - start < 8 and name_char(norm[start - 1]):
            start -= 1
        if start > lo and name_char(norm[start - 1]):
            continue  # where the name begins is unclear
        start = strip_lead(norm, start, p)
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

# ----------------------------------------------------------------------------------------------------------
# the gazetteer

def name_char(c: str) -> bool:
    return c not in STOP and HAN.match(c) is not None

def overlaps_any(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)

def _introduced(norm: str, start: int) -> bool:
    """The name at ``start`` follows a word that introduces a place: 住在…, 我们是…, 位于…, 叫…."""
    return start > 0 and norm[start - 1] in _INTRO

def strip_lead(norm: str, start: int, end: int) -> int:
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
