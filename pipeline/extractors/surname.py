"""Caller surname, from what the caller says about themselves.

Mandarin, strongest first:

- "免贵姓王", "我姓王", "姓王，三横王", "我姓欧阳" (compound surnames), ASR's "我性王";
- spelled out: "我姓弓长张" / "弓长张" → 张, "耳东陈" → 陈 (``contact.yaml: spelled``);
- "我是王先生 / 王女士 / 王阿姨", "叫我小王", "我叫王建国" (the first character, or a compound surname);
- right after the agent asks ("您贵姓？"), a caller turn that opens with a surname: "王，电话是…".

The character must be a known surname (``contact.yaml``), so "我姓名都说了" does not give 名.

English: "my name is Sarah Collins", "this is Sarah Collins", "I'm David Chen" → the last name;
"Mr. Wilson", "my last name is Wilson"; a name spelled letter by letter ("W-I-L-S-O-N") wins over the
heard spelling. A first name alone ("this is Sarah") gives nothing: it is not a surname.

Limits: a surname the caller never says is not guessed; a name said about someone else ("我是替我们
王大爷打的") may be taken when it follows "我是".

Example: "我姓陈，电话一三六…" → ``陈``; "Hi, this is Sarah Collins" → ``Collins``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.text import pinyin

_ZH_DECLARED = re.compile(r"(?:免贵|我|本人)(?:姓|性)(?:是)?(?P<s>[\u4e00-\u9fff]{1,4})")
_ZH_BARE = re.compile(r"(?<![百贵老])姓(?:是)?(?P<s>[\u4e00-\u9fff]{1,4})")
_ZH_TITLE = re.compile(r"(?:我是|我就是|我叫|这里是|这边是)?(?P<s>[\u4e00-\u9fff]{1,2}?)"
                       r"(?:先生|女士|小姐|阿姨|大爷|大妈|师傅|老师|大姐|大哥|奶奶|爷爷)")
_ZH_CALLED = re.compile(r"(?:我叫|我的名字(?:叫|是)|名字叫|叫我(?:小|老)?)(?P<s>[\u4e00-\u9fff]{1,3})"
                        r"|我(?:就)?是(?:小|老)(?P<s2>[\u4e00-\u9fff])(?=[，。,.\s]|$)")
_ZH_ANSWER = re.compile(
    r"^\s*(?:嗯|啊|哦|我是|我)?[，,\s]*(?:姓)?(?P<s>[\u4e00-\u9fff]{1,2}?)(?=[，。,.\s]|$|先生|女士|电话|手机)"
)
_ASKS_NAME = re.compile(r"贵姓|姓名|称呼|名字|your name|last name")

_EN_INTRO = re.compile(
    r"\b(?P<lead>my name is|my name's|name is|this is|i am|i'm|it's|its|speaking is|name here is)\s+"
    r"(?P<name>[a-z][a-z'\-]+(?:[ \t]+[a-z][a-z'\-]+){0,2})", re.IGNORECASE)
_EN_TITLE = re.compile(r"\b(?:mr|mrs|ms|miss|dr|mister|missus)\.?\s+(?P<last>[a-z][a-z'\-]+)", re.IGNORECASE)
_EN_LAST = re.compile(r"\b(?:last|family|sur)\s?name(?:'s| is)\s+(?P<last>[a-z][a-z'\-]+)", re.IGNORECASE)
_EN_BARE = re.compile(r"(?:^|(?<=[.,!?;:]\s)|(?<=\n))(?P<first>[A-Z][a-z'\-]+)\s+(?P<last>[A-Z][a-z'\-]+)"
                      r"(?=\s*[,.;\n]|\s*$|\s+(?:\d|(?i:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b))")
_EN_NOT_BARE = {"street", "avenue", "road", "court", "lane", "drive", "place", "boulevard", "way", "square",
                "hotline", "services", "city", "center", "centre", "building", "apartments", "school", "hospital",
                "district", "station", "thank", "thanks", "good", "morning", "afternoon", "evening", "hello",
                "the", "our", "my", "there", "we", "they", "please", "sorry", "yes", "no", "okay"}
_EN_NUMBER_NEXT = re.compile(r"\d|\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|number|phone)\b",
                             re.IGNORECASE)
_EN_SPELLED = re.compile(r"\b(?:[a-z][\s\-.,]+){2,}[a-z]\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def _common_homophone(ch: str, common: tuple[str, ...]) -> str | None:
    """The most common surname that sounds like ``ch`` (tones ignored), if ``ch`` is not common itself."""
    if ch in common or not ("\u4e00" <= ch <= "\u9fff"):
        return None
    heard = pinyin.reading(ch)
    return next((s for s in common if pinyin.reading(s) == heard), None)


def _zh_surname(candidate: str, call: Call, *, sound: bool = True) -> str | None:
    """The surname at the start of ``candidate``: spelled out, compound, common, or a homophone of one."""
    rules = call.rules
    for key, value in rules.spelled_surnames.items():
        if candidate.startswith(key):
            return value
    if candidate[:2] in rules.compound_surnames:
        return candidate[:2]
    if sound:
        homophone = _common_homophone(candidate[:1], rules.common_surnames)
        if homophone:
            return homophone
    if candidate[:1] in rules.surnames:
        return candidate[:1]
    return None


def _zh(call: Call) -> tuple[str, str, int, int, float] | None:
    view = call.caller_view.text
    for pattern, rule, conf in ((_ZH_DECLARED, "surname:declared", 0.95), (_ZH_BARE, "surname:bare", 0.85)):
        for m in pattern.finditer(view):
            name = _zh_surname(m.group("s"), call)
            if name:
                if not m.group("s").startswith(name) and name not in call.rules.spelled_surnames.values():
                    return name, rule + ":homophone", m.start(), m.end(), 0.6
                return name, rule, m.start(), m.end(), conf
    for m in _ZH_TITLE.finditer(view):
        lead = m.group(0)
        if not lead.startswith(("我是", "我就是", "我叫", "这里是", "这边是")) and m.start() > 0 \
                and view[m.start() - 1] not in "，。,. \n":
            continue
        cand = m.group("s")
        name = _zh_surname(cand, call, sound=False)
        if name and (len(cand) == len(name)):
            return name, "surname:title", m.start(), m.end(), 0.8
    for m in _ZH_CALLED.finditer(view):
        name = _zh_surname(m.group("s") or m.group("s2"), call, sound=False)
        if name:
            return name, "surname:called", m.start(), m.end(), 0.75
    # an answer to the agent's "您贵姓？"
    view_obj = call.caller_view
    for start, origin in zip(view_obj.starts, view_obj.origins, strict=True):
        asked = call.roles.agent_before(origin)
        if asked is None or not _ASKS_NAME.search(call.folded[asked[0]:asked[1]]):
            continue
        piece = view[start:start + 12]
        answer = _ZH_ANSWER.match(piece)
        if answer:
            name = _zh_surname(answer.group("s"), call, sound=False)
            if name and len(answer.group("s")) == len(name):
                return name, "surname:answer", start + answer.start("s"), start + answer.end("s"), 0.7
    return None


def _en(call: Call) -> tuple[str, str, int, int, float] | None:
    view = call.caller_view.text
    not_names = call.rules.not_names
    found: tuple[str, str, int, int, float] | None = None
    for m in _EN_LAST.finditer(view):
        found = (m.group("last"), "surname:en_last_name", m.start(), m.end(), 0.9)
        break
    if found is None:
        for m in _EN_INTRO.finditer(view):
            lead = m.group("lead").lower()
            tokens = []
            for tok in m.group("name").split():
                if tok.lower() in not_names or re.fullmatch(r"(?:[a-z]-)+[a-z]", tok, re.IGNORECASE):
                    break
                if lead not in ("my name is", "my name's", "name is") and not tok[0].isupper():
                    break
                tokens.append(tok)
            if len(tokens) >= 2:
                end = m.start("name") + len(" ".join(tokens))
                found = (tokens[-1], "surname:en_intro", m.start(), end, 0.9)
                break
    if found is None:
        for m in _EN_TITLE.finditer(view):
            if m.group("last").lower() in not_names:
                continue
            found = (m.group("last"), "surname:en_title", m.start(), m.end(), 0.85)
            break
    if found is None:
        found = _en_bare(call, view)
    if found is None:
        return None
    name, rule, start, end, conf = found
    spelled = _EN_SPELLED.search(view, end, min(len(view), end + 60))
    if spelled:
        letters = re.sub(r"[^a-z]", "", spelled.group().lower())
        if len(letters) >= 3 and (letters == name.lower() or letters[:1] == name[:1].lower()):
            name, end = letters, spelled.end()
    if name.islower() or name.isupper():
        name = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
    return name, rule, start, end, conf


def _en_bare(call: Call, view: str) -> tuple[str, str, int, int, float] | None:
    """A name said on its own ("James Wilson, five five five …"), answering the agent or before a number."""
    not_names = call.rules.not_names
    for m in _EN_BARE.finditer(view):
        words = (m.group("first").lower(), m.group("last").lower())
        if any(w in not_names or w in _EN_NOT_BARE for w in words):
            continue
        asked = False
        origin = call.caller_view.to_call(m.start())
        piece_start = max((o for o in call.roles.caller if o[0] <= origin), default=(origin, origin))[0]
        agent = call.roles.agent_before(piece_start, within=5)
        if agent is not None and _ASKS_NAME.search(call.folded[agent[0]:agent[1]]):
            asked = True
        if asked or _EN_NUMBER_NEXT.search(view, m.end(), min(len(view), m.end() + 25)):
            return m.group("last"), "surname:en_bare_name", m.start(), m.end(), 0.7
    return None


@extractor("caller_surname")
def extract_surname(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """The caller's surname (see the module docstring), or None."""
    found = _zh(call) if call.language == "zh" else _en(call)
    if found is None and call.language == "zh":
        found = _en(call)
    if found is None:
        return Extraction("caller_surname", None, confidence=0.5)
    name, rule, start, end, conf = found
    if name in call.rules.prompt_surnames:
        # the recogniser's prompt example (我姓张): on unclear audio it may be copied, not heard
        rule, conf = rule + ":prompt_echo", min(conf, 0.5)
    s, e = call.caller_view.span(start, end)
    return Extraction("caller_surname", name, evidence=(call.evidence(rule, s, e),), confidence=conf,
                      review=conf < 0.75)
