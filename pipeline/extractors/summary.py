"""Summary: one line a dispatcher can act on — place + problem + the key detail.

Mandarin calls get a Mandarin line: the place the location fields give (district, street, community,
address), then the caller's clause that holds the strongest category cue (fillers such as "你好",
"我想反映一下", "我是…的居民" and place names already said are dropped), then one more clause with a
key detail when the caller gave one (who is affected, how urgent, another cue of the same problem):
``海淀区中关村街道楼下饭店油烟特别大，窗户都不敢开``. English calls get an English line built the same
way: ``Pothole in front of the school is getting bigger (42 Maple Avenue)``.

Limits: the summary quotes the caller's own words; it does not paraphrase, and when no cue matched it
falls back to the caller's first clause. At most 60 characters (Mandarin) or 160 (English).

Example: caller "我们小区从昨天开始停水，家里有老人" in 东城区 → ``东城区小区从昨天开始停水，家里有老人``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.extractors.roles import clauses

_ZH_FILLER = re.compile(
    r"^(?:你好|您好|喂|哎|嗯|啊|那个|就是|是这样的?|我想反映一下|我想反映|我要反映一下|我要反映|我反映一下|反映一下|"
    r"我想投诉一下|我要投诉|我想投诉|我想举报|我要举报|我想咨询一下|我想咨询|我想问一下|我想问|请问|我打电话是|"
    r"我们这边|我们这儿|我们那儿|我们那边|这边|然后|而且|另外|结果|所以|但是|可是|因为)[，,\s]*"
)
_PLACE_FRAME = re.compile(
    r"(?:我是|我们是|我住在|我家住在|我家在|我们住在|住在|我在|我们在|在)?(?:\x00)+"
    r"(?:这边|那边|这里|那里)?(?:的)?(?:居民|住户|业主)?(?:的)?"
)
_ZH_RESIDENT = re.compile(r"^我(?:是|家在|住在)[^，。]{0,20}(?:的居民|的住户|的业主|居民|住户|业主)$")
_EN_FILLER = re.compile(
    r"^(?:hi there|hi|hello|hey|yes|yeah|sure|well|so|um|uh|oh|okay|ok|thanks|thank you|"
    r"good morning|good afternoon|good evening)"
    r"[,.!\s]+", re.IGNORECASE)
_EN_CALLING = re.compile(r"^i(?:'m| am) calling (?:about|because|to report|to complain about)\s+", re.IGNORECASE)


def _clean_zh(clause: str, places: list[str]) -> str:
    text = clause.strip()
    for _ in range(3):
        new = _ZH_FILLER.sub("", text)
        if new == text:
            break
        text = new
    for place in places:
        text = text.replace(place, "\x00")
    # what is left around a removed place: "我是\x00的", "我们住在\x00这边", "\x00的居民"
    text = _PLACE_FRAME.sub("", text).replace("\x00", "")
    text = re.sub(r"^(?:我们|我家|咱们)?(?:的)?(?:那个)?", "", text) if len(text) > 8 else text
    text = re.sub(r"\s+", "", text)
    return text.strip("，,。.！!？?；;的")


def _clean_en(clause: str) -> str:
    text = clause.strip()
    for _ in range(3):
        new = _EN_CALLING.sub("", _EN_FILLER.sub("", text))
        if new == text:
            break
        text = new
    return text.strip(" ,.;!?")


def _caller_clauses(call: Call) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in call.roles.caller:
        out.extend(clauses(call.text, s, e))
    return out


@extractor("summary", after=("category", "urgency", "location", "vulnerable", "callback_number",
                             "caller_surname", "request_type"))
def extract_summary(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """One line: place + problem + key detail, in the call's language."""
    pieces = _caller_clauses(call)
    if not pieces:
        return Extraction("summary", "", confidence=0.0, review=True)
    category = done["category"]
    weight: dict[tuple[int, int], float] = {}
    for h in (category.detail or {}).get("hits", ()):
        p = next((p for p in pieces if p[0] <= h.start < p[1]), None)
        if p is not None:
            weight[p] = weight.get(p, 0.0) + h.cue.weight
    anchors = sorted(weight, key=lambda p: -weight[p])
    main = None
    if anchors:
        top = weight[anchors[0]]
        main = min((p for p in anchors if weight[p] >= 0.6 * top), key=lambda p: p[0])
    if main is None:
        # no category words: the clause of the request itself ("我想表扬一下…"), else the first real clause
        asks = sorted(ev.start_char for ev in done["request_type"].evidence) if "request_type" in done else []
        main = next((p for a in asks for p in pieces if p[0] <= a < p[1]), None)
    if main is None:
        main = next((p for p in pieces if len(_clean_zh(call.text[p[0]:p[1]], []) if call.language == "zh"
                                                 else _clean_en(call.text[p[0]:p[1]])) >= 3), pieces[0])
    detail_spans = [(ev.start_char, ev.end_char) for name in ("vulnerable", "urgency")
                    for ev in (done[name].evidence if name in done else ())]
    detail_spans += [p for p in anchors if p != main]
    detail = None
    for a, _b in detail_spans:
        p = next((p for p in pieces if p[0] <= a < p[1]), None)
        if p is not None and p != main:
            detail = p
            break
    if detail is None:
        i = pieces.index(main)
        if i + 1 < len(pieces):
            nxt = pieces[i + 1]
            if not any(done.get(f) and any(ev.start_char >= nxt[0] and ev.end_char <= nxt[1]
                                           for ev in done[f].evidence)
                       for f in ("callback_number", "caller_surname")):
                detail = nxt
    if call.language == "zh":
        places = [done[f].value for f in ("district", "street", "community", "address")
                  if f in done and done[f].value]
        problem = _clean_zh(call.text[main[0]:main[1]], places)
        if len(problem) < 4 and detail is not None:
            problem, detail = problem + _clean_zh(call.text[detail[0]:detail[1]], places), None
        line = "".join(places) + problem
        if detail is not None:
            extra = _clean_zh(call.text[detail[0]:detail[1]], places)
            if extra and extra not in line and len(_ZH_RESIDENT.sub("", extra)) > 1:
                line = line + "，" + extra if detail[0] > main[0] else "".join(places) + extra + "，" + problem
        line = line[:60]
    else:
        problem = _clean_en(call.text[main[0]:main[1]])
        if detail is not None:
            extra = _clean_en(call.text[detail[0]:detail[1]])
            if len(extra) >= 8 and extra.lower() not in problem.lower():
                keep_case = extra.startswith(("I ", "I'")) or extra[:2].isupper()
                problem += "; " + (extra if keep_case else extra[:1].lower() + extra[1:])
        address = done["address"].value if "address" in done else None
        if address and address.lower() not in problem.lower():
            problem += f" ({address})"
        line = (problem[:1].upper() + problem[1:])[:160]
    return Extraction("summary", line, evidence=(call.evidence("summary:clause", main[0], main[1]),),
                      confidence=0.6 if anchors else 0.3, review=not line)
