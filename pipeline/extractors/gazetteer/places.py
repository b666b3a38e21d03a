"""The gazetteer: districts, street offices and towns found in a text, exactly or by sound, and resolved.

``Gazetteer.load()`` reads the data file once (``data.build``) and builds its matchers: an Aho-Corasick
automaton over every written form, a second one over their loose pinyin (``phonetics``), an index of
stems by syllable for names with one syllable misheard before a written suffix, and the streets of each
district by sound, for a name misheard in stem and suffix alike once the district is known. ``find``
lists what a text names; ``resolve`` decides the caller's district, street, community and address.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from pipeline.errors import ConfigError
from pipeline.extractors.gazetteer.address import (
    STOP,
    find_address,
    find_communities,
    name_char,
    overlaps_any,
    words,
)
from pipeline.extractors.gazetteer.data import (
    DATA_PATH,
    Candidate,
    Entry,
    Location,
    PlaceMatch,
    PreparedText,
    Variant,
    build,
    english_index,
)
from pipeline.extractors.gazetteer.phonetics import (
    SCORE_HOMOPHONE,
    SCORE_LOOSE,
    SCORE_NEAR,
    SUFFIX_KEYS,
    SUFFIX_SOUND,
    TOKENS,
    sound_tokens,
    stem_score,
    strict_syllables,
)
from pipeline.text import pinyin
from pipeline.text.chinese import HAN, halfwidth, has_han, to_simplified

log = logging.getLogger(__name__)

# In a misheard name 到 stands for 道 (街到) and 去 for 区 (海淀去).
_SOUND_STOP = STOP - frozenset("到去")

# The short district name that is also an ordinary word counts after/before these.
_CONTEXT_BEFORE = words("北京市 北京 住在 家在 位于 我们 我家 在 住 是 到 去 来 回")

#: what follows a street name in ordinary speech and sounds like 街道 (the name stays a bare name)
_NOT_SUFFIX = frozenset({"接到", "借到", "解到", "截到"})

#: after a final 区 these make it another word (区域 area, 区别 difference): the 区 is not a district's
_NOT_AFTER_QU = ("域", "别", "分")

_CONTEXT_AFTER = ("区", "这边", "那边", "这块", "那块", "这里", "那里", "这儿", "那儿", "地区", "一带",
                  "附近")

_SHORT_NUMBER = re.compile(r"(?<![0-9])[0-9]{1,2}(?![0-9])")

_SPACE = re.compile(r"\s+")

_ANCHOR = re.compile(r"街道|地区|镇|乡|区")

_EN_WORD = re.compile(r"[A-Za-z]+")

_EN_TYPES = {"district": "district", "subdistrict": "street", "street": "street", "town": "street",
             "township": "street", "area": "street"}


class Gazetteer:
    """The places of the data file and the matchers built from them. Build with ``Gazetteer.load()``."""

    _cache: dict[tuple[str, int], Gazetteer] = {}

    def __init__(self, data: Mapping[str, Any], *, source: str = "<data>") -> None:
        self.source = source
        self.version, self.entries, self.variants = build(data, source)
        self._exact = ahocorasick.Automaton()
        for vid, v in enumerate(self.variants):
            self._exact.add_word(v.surface, vid)
        self._exact.make_automaton()
        self._sound = self._sound_automaton()
        self._near = self._near_index()
        self._streets_by_sound = self._district_index()
        self._english = english_index(self.entries, data)
        self._short_needs_context = {
            str(name): bool(info.get("short_needs_context")) for name, info in data["districts"].items()
        }

    def _sound_automaton(self) -> Any:
        """Loose pinyin of every full name and long bare name → (pattern length, variants)."""
        by_key: dict[str, list[int]] = {}
        for vid, v in enumerate(self.variants):
            if sound_eligible(v, self.entries):
                for reading in v.readings:
                    by_key.setdefault("".join(pinyin.loose(s) + "|" for s in reading), []).append(vid)
        automaton = ahocorasick.Automaton()
        for key, vids in by_key.items():
            automaton.add_word(key, (len(key), tuple(vids)))
        automaton.make_automaton()
        return automaton

    def _near_index(self) -> dict[str, dict[int, dict[tuple[int, str], list[tuple[int, tuple[str, ...]]]]]]:
        """Written suffix → stem length → (position, loose syllable) → (variant, stem reading)."""
        index: dict[str, dict[int, dict[tuple[int, str], list[tuple[int, tuple[str, ...]]]]]] = {}
        for vid, v in enumerate(self.variants):
            if v.bare or not v.readings or not all(HAN.match(c) for c in v.surface):
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
                    by_pos.setdefault((i, pinyin.loose(syl)), []).append((vid, stem))
        return index

    def _district_index(self) -> dict[tuple[str, str], dict[int, list[tuple[int, tuple[str, ...]]]]]:
        """(district, heard suffix) → stem length → (variant, stem reading): the streets of one district."""
        index: dict[tuple[str, str], dict[int, list[tuple[int, tuple[str, ...]]]]] = {}
        for vid, v in enumerate(self.variants):
            if v.bare or not v.readings or self.entries[v.entries[0]].kind != "street" \
                    or not all(HAN.match(c) for c in v.surface):
                continue
            suffix = next((x for x in SUFFIX_KEYS if v.surface.endswith(x)), None)
            stem_len = len(v.surface) - len(suffix or "")
            if suffix is None or stem_len < 2:
                continue
            for reading in v.readings:
                for district in {self.entries[e].district for e in v.entries}:
                    by_len = index.setdefault((district, SUFFIX_KEYS[suffix]), {})
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
        found += find_communities(prepared, found, self.variants, self.entries)
        out = [m for f in found for m in self._to_matches(prepared, f)]
        if language == "en" and _EN_WORD.search(text):
            taken = [(m.start, m.end) for m in out]
            out += [m for m in self._find_english(text) if not overlaps_any(m.start, m.end, taken)]
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
        found += find_communities(prepared, found, self.variants, self.entries)
        matches = [m for f in found for m in self._to_matches(prepared, f)]
        if language == "en" and _EN_WORD.search(text):
            taken = [(m.start, m.end) for m in matches]
            matches += [m for m in self._find_english(text) if not overlaps_any(m.start, m.end, taken)]
        matches.sort(key=lambda m: (m.start, -m.end))
        return self._resolve(prepared, matches, language)

    # -- internals: text preparation ------------------------------------------------------------------------

    def _prepare(self, text: str) -> PreparedText:
        norm = halfwidth(to_simplified(text))  # both one for one: offsets stay those of the text
        if not _SPACE.search(norm):
            return PreparedText(text, norm, None)
        index = [i for i, c in enumerate(norm) if not c.isspace()]
        return PreparedText(text, "".join(norm[i] for i in index), index)

    # -- internals: places ---------------------------------------------------------------------------------
    def _find_places(self, t: PreparedText) -> list[Candidate]:
        norm = t.norm
        found: list[Candidate] = []
        deferred: list[Candidate] = []  # short forms that need context: they count right before a place too
        for end_incl, vid in self._exact.iter_long(norm):
            v = self.variants[vid]
            start, end = end_incl + 1 - len(v.surface), end_incl + 1
            entries = tuple(e for e in v.entries
                            if not _rejected(norm, start, end, self.entries[e]))
            if not entries:
                continue
            f = Candidate(start, end, vid, entries, 1.0, v.rule)
            if v.needs_context and not _in_context(norm, start, end, found):
                deferred.append(f)
            else:
                found.append(f)
        starts_at = {f.start for f in found}
        found += [f for f in deferred if f.end in starts_at]
        taken = [(f.start, f.end) for f in found]
        if not has_han(norm):
            return found
        sound = "".join(map(TOKENS.__getitem__, norm))
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
            if clash and score < SCORE_HOMOPHONE:
                continue  # extend a bare name only by what sounds exactly like its suffix
            found = [f for f in found if f not in clash]
            found.append(Candidate(cs, ce, vid, self.variants[vid].entries, score, "gazetteer.pinyin"))
        taken = [(f.start, f.end) for f in found]
        for m in _ANCHOR.finditer(norm):
            if overlaps_any(m.start(), m.end(), taken) or norm.startswith(_NOT_AFTER_QU, m.end()):
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
        toks = sound_tokens(norm[lo:hi])
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

    def _inside(self, f: Candidate, cs: int, ce: int) -> bool:
        """A shorter office name inside a longer one that sounds exactly like the whole (平果园街道 is
        苹果园街道 misheard, not 平 + 果园街道)."""
        return cs <= f.start and f.end <= ce and (f.start, f.end) != (cs, ce) \
            and all(self.entries[e].kind == "street" for e in f.entries)

    def _extends(self, norm: str, f: Candidate, cs: int, ce: int, vids: Sequence[int]) -> bool:
        """A sound match may replace a bare name it contains when it adds the misheard suffix of the
        same place (永顺 + 真 → 永顺镇), but not an ordinary word after it (回龙观 + 接到)."""
        if f.variant is None or not self.variants[f.variant].bare or not (cs <= f.start and f.end <= ce):
            return False
        extra = norm[cs:f.start] + norm[f.end:ce]
        if not extra or extra in _NOT_SUFFIX:
            return False
        return any(set(f.entries) & set(self.variants[v].entries) for v in vids)

    def _verify_sound(self, norm: str, cs: int, ce: int, vids: Sequence[int],
                      found: Sequence[Candidate]) -> tuple[int, float] | None:
        """Accept a sound-alike window: same syllables, a character in common with the name, no stop word."""
        window = norm[cs:ce]
        stops = sum(c in _SOUND_STOP for c in window)
        if stops > 1 or (stops and len(window) < 4):
            return None  # a stop word inside only in a long name (东华们街道), never in 他们说真
        if window[-1] == "区" and norm.startswith(_NOT_AFTER_QU, ce):
            return None
        strict = tuple(strict_syllables(window))
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
            score = SCORE_HOMOPHONE if strict in v.readings else SCORE_LOOSE
            if best is None or score > best[1]:
                best = (vid, score)
        return best

    def _near_miss(self, norm: str, anchor: int, suffix: str, taken: list[tuple[int, int]]) -> Candidate | None:
        """A name with one stem syllable misheard (锋排区 → 丰台区, 北太平张街道 → 北太平庄街道), only
        before a suffix written as such. Two-syllable stems need the misheard syllable to rhyme (排/台)."""
        by_len = self._near.get(suffix)
        if not by_len:
            return None
        best: Candidate | None = None
        for n, candidates in by_len.items():
            start = anchor - n
            if start < 0 or overlaps_any(start, anchor, taken):
                continue
            window = norm[start:anchor]
            if not all(name_char(c) for c in window):
                continue
            strict = [pinyin.reading(c) for c in window]
            loose = [pinyin.loose(s) if s else "#" for s in strict]
            hits: dict[tuple[int, tuple[str, ...]], int] = {}
            for i, syl in enumerate(loose):
                for item in candidates.get((i, syl), ()):
                    hits[item] = hits.get(item, 0) + 1
            for (vid, stem), count in hits.items():
                if count < n - 1:
                    continue
                if suffix != "区" and not set(window) & set(self.variants[vid].surface[:n]):
                    continue  # a street needs one stem character as written (相应乡 is not 香营乡)
                mean = stem_score(strict, loose, stem, lenient=0.6 if n >= 3 else None)
                if mean is None or mean < 0.75:
                    continue
                if n == 2 and not any(a == b for a, b in zip(strict, stem, strict=True)):
                    continue  # 锋排区: one syllable exactly right, the other rhyming (产品区 is neither)
                score = round(SCORE_NEAR * mean, 3)
                if best is None or score > best.score or (score == best.score and n > best.end - best.start):
                    v = self.variants[vid]
                    best = Candidate(start, anchor + len(suffix), vid, v.entries, score, "gazetteer.pinyin")
        return best

    def _in_district(
        self, norm: str, sound: str, said: set[str], taken: list[tuple[int, int]],
    ) -> list[Candidate]:
        """Streets of a district the caller named, misheard in the stem and the suffix alike
        (通州区宋当阵 → 宋庄镇): few candidates, so one syllable may be off."""
        out: list[Candidate] = []
        for m in SUFFIX_SOUND.finditer(sound):
            anchor = sound.count("|", 0, m.start())
            end = anchor + m.group().count("|")
            if overlaps_any(anchor, end, taken):
                continue
            heard = m.group()
            exact_suffix = heard != "jie|" + heard[4:] or heard == "jie|dao|"
            if not exact_suffix:  # 街道 heard as 街等 / 街段: then the stem must sound right throughout
                heard = "jie|dao|"
            best: Candidate | None = None
            for district in sorted(said):
                for n, candidates in self._streets_by_sound.get((district, heard), {}).items():
                    start = anchor - n
                    if start < 0 or overlaps_any(start, anchor, taken):
                        continue
                    window = norm[start:anchor]
                    if not all(name_char(c) for c in window):
                        continue
                    strict = [pinyin.reading(c) for c in window]
                    loose = [pinyin.loose(s) if s else "#" for s in strict]
                    for vid, stem in candidates:
                        mean = stem_score(strict, loose, stem, lenient=0.5 if exact_suffix else None)
                        if mean is None or mean < (0.7 if exact_suffix else 0.9):
                            continue
                        score = round(SCORE_NEAR * 0.9 * mean, 3)
                        if best is None or score > best.score:
                            entries = tuple(e for e in self.variants[vid].entries
                                            if self.entries[e].district == district)
                            best = Candidate(start, end, vid, entries, score, "gazetteer.pinyin")
            if best is not None:
                out.append(best)
                taken.append((best.start, best.end))
        return out

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
    def _to_matches(self, t: PreparedText, f: Candidate) -> list[PlaceMatch]:
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

    def _resolve(self, t: PreparedText, matches: list[PlaceMatch], language: str) -> Location:
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
        address = find_address(t, matches, anchor_end, language)
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


def _rejected(norm: str, start: int, end: int, entry: Entry) -> bool:
    """The words around show the name is part of something else: 张镇长, 大兴安岭, 正本清源."""
    return any(norm.startswith(f, end) for f in entry.reject_followed_by) or \
        any(norm.endswith(b, 0, start) for b in entry.reject_preceded_by)

def _in_context(norm: str, start: int, end: int, found: Sequence[Candidate]) -> bool:
    if any(norm.startswith(a, end) for a in _CONTEXT_AFTER):
        return True
    if any(norm.endswith(b, 0, start) for b in _CONTEXT_BEFORE):
        return True
    return any(f.end == start for f in found)

def _suffix_syllables(surface: str) -> int:
    if surface.endswith(("街道", "地区")):
        return 2
    return 1 if surface.endswith(("镇", "乡", "区")) else 0

def sound_eligible(v: Variant, entries: Sequence[Entry]) -> bool:
    """Forms recovered by sound: full names, and bare forms of three or more characters."""
    if not v.readings:
        return False
    if v.bare:
        return len(v.surface) >= 3 and not v.needs_context and entries[v.entries[0]].kind == "street"
    return True
