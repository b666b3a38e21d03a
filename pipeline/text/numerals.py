"""Numbers as callers say them: digit strings (phones), money, ages; the one spoken-number grammar.

What it reads:

- digit strings, Chinese or Arabic, spoken one digit at a time, grouped or not: "一三六一一二二四四五五",
  "幺三八 幺二三四 五六七八", "136 1122 4455", "010-6381-2234", mixed "138一二三四5678";
- English digit strings: "five five five, eight seven six, five four three two", "oh" for zero,
  "double five", "triple nine", "fifty-four" as two digits, "555-876-5432";
- money: Chinese numerals or digits with 元 / 块(钱) / 万(元), "一百三十三万元" → 1330000, "30万" →
  300000 (with a money word nearby), "八千块" → 8000, "两千五" after 工资 → 2500; English "$1,200",
  "1,200 dollars", "twelve hundred dollars", "5k dollars";
- ages: "七十多岁" → 70, "80岁", "七旬", "80-year-old", "in her eighties".

What it does not: it does not decide which digit string is the caller's phone (``callback.py`` does) and
it reads amounts only where a currency word or a money word makes them money ("三十万户" is not money).
Chinese numerals with units go through ``cn2an`` on the picked span only, never on whole sentences.

Example::

    >>> [r.digits for r in digit_runs("电话一三六 1122 四四五五")]
    ['13611224455']
    >>> [a.value for a in money_amounts("定金交了三十万，一共一百三十三万元", "zh")]
    [300000.0, 1330000.0]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: digits as a Mandarin caller says them one by one, and as the recogniser writes them, with their values
DIGIT_VALUES = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4",
                "五": "5", "六": "6", "七": "7", "八": "8", "九": "9", **{d: d for d in "0123456789"}}
#: what a transcript's digit run may hold besides: ○ for 〇, and 腰, how the recogniser writes 幺 (yāo,
#: "one" on the phone) when it does not hear a number ("电话腰三腰二零零八…"); it counts only inside a
#: run of digits, never alone
CN_DIGIT = {**DIGIT_VALUES, "○": "0", "腰": "1"}

_DIGIT_CHARS = "0-9零〇○幺腰一二两三四五六七八九"
_DIGIT_RUN = re.compile(rf"[{_DIGIT_CHARS}](?:[\s\-—–,，、.()（）]{{0,3}}[{_DIGIT_CHARS}])*")

EN_UNITS = {"zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
            "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
           "ninety": 90}
EN_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "k": 1000}
_EN_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


@dataclass(frozen=True)
class DigitRun:
    digits: str
    start: int
    end: int


@dataclass(frozen=True)
class Amount:
    value: float
    start: int
    end: int


@dataclass(frozen=True)
class Age:
    years: int
    start: int
    end: int


def digit_runs(text: str, *, min_digits: int = 3) -> list[DigitRun]:
    """Chinese / Arabic digit strings of ``text`` (separators inside dropped), at least ``min_digits``."""
    out = []
    for m in _DIGIT_RUN.finditer(text):
        digits = "".join(CN_DIGIT[ch] for ch in m.group() if ch in CN_DIGIT)
        if len(digits) >= min_digits:
            out.append(DigitRun(digits, m.start(), m.end()))
    return out


def english_digit_runs(text: str, *, min_digits: int = 3) -> list[DigitRun]:
    """Digit strings spoken in English words (and digits) in lower-case ``text``.

    "five five five, eight seven six, five four three two" → "5558765432"; "double five" → "55";
    "fifty-four" → "54"; runs may be split by commas, hyphens, dots, spaces and "dash".
    """
    tokens = [(m.group(), m.start(), m.end()) for m in _EN_TOKEN.finditer(text)]
    out: list[DigitRun] = []
    i, n = 0, len(tokens)
    while i < n:
        digits, start, end, j = "", -1, -1, i
        pending_mult = 1
        while j < n:
            tok, s, e = tokens[j]
            if tok in ("double", "triple") and j + 1 < n and (tokens[j + 1][0] in EN_UNITS or
                                                                tokens[j + 1][0].isdigit()):
                pending_mult = 2 if tok == "double" else 3
                start = s if start < 0 else start
                j += 1
                continue
            if tok.isdigit():
                digits += tok * pending_mult if len(tok) == 1 else tok
            elif tok in EN_UNITS and EN_UNITS[tok] < 10:
                if tok in ("oh", "o") and not digits and not (j + 1 < n and tokens[j + 1][0] in EN_UNITS):
                    break
                digits += str(EN_UNITS[tok]) * pending_mult
            elif tok in EN_TENS:
                value = EN_TENS[tok]
                k = j + 1
                if k + 1 < n and tokens[k][0] == "-" and tokens[k + 1][0] in EN_UNITS \
                        and 0 < EN_UNITS[tokens[k + 1][0]] < 10:
                    value += EN_UNITS[tokens[k + 1][0]]
                    k += 2
                elif k < n and tokens[k][0] in EN_UNITS and 0 < EN_UNITS[tokens[k][0]] < 10:
                    value += EN_UNITS[tokens[k][0]]
                    k += 1
                digits += str(value)
                start = s if start < 0 else start
                end = tokens[k - 1][2]
                j = k
                pending_mult = 1
                continue
            elif tok in ("-", ",", ".", "dash", "(", ")") and digits:
                j += 1
                continue
            else:
                break
            pending_mult = 1
            start = s if start < 0 else start
            end = e
            j += 1
        if len(digits) >= min_digits:
            out.append(DigitRun(digits, start, end))
        i = max(j, i + 1)
    return out


# ---------------------------------------------------------------------------------------------- money
_CN_NUM = r"(?:\d{1,3}(?:,\d{3})+|[0-9零〇两一二三四五六七八九十百千万亿点.])+"
_ZH_MONEY = re.compile(
    rf"(?P<num>{_CN_NUM})(?:(?:多|来|余)(?P<unit>万|亿)?)?(?P<cur>元|块钱|块|美元|美金|人民币)?"
)
_MONEY_WORDS = re.compile(r"钱|款|费|金|价|工资|薪|欠|退|付|交了|花|赔|贷|押金|收了|罚|值|报价|标价|涨到|共计|买|卖")
_BLOCK_AFTER = re.compile(r"[钱，。！？,.!?\s了的啊吧呢呀]|$")
_NOT_MONEY_AFTER = re.compile(
    r"岁|年|月|日|号|楼|层|户|天|个|次|点|分|小时|米|公里|平|栋|单元|室|人|家|辆|条|斤|多[岁年月天个]"
)


@lru_cache(maxsize=2048)
def cn_number(text: str) -> float | None:
    """A Chinese / Arabic / mixed numeral ("一百三十三万", "1.5万", "两千五", "3,000") as a number."""
    text = text.replace(",", "").rstrip("点.")
    if not text:
        return None
    if text.isdigit():
        return float(text)
    import cn2an

    try:
        return float(cn2an.cn2an(text, "smart"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _zh_money(text: str) -> list[Amount]:
    out = []
    for m in _ZH_MONEY.finditer(text):
        num, unit, cur = m.group("num"), m.group("unit") or "", m.group("cur") or ""
        if num in ("一", "两", ".", "点") and not cur:
            continue  # a lone "一" is an article far more often than a number
        if cur == "块" and not _BLOCK_AFTER.match(text, m.end()):
            continue  # 一块地, 一块石头
        if not cur:
            if _NOT_MONEY_AFTER.match(text, m.end()):
                continue
            context = text[max(0, m.start() - 6):m.start()] + "|" + text[m.end():m.end() + 4]
            if not _MONEY_WORDS.search(context):
                continue
            big_unit = unit or any(u in num for u in "千万亿")
            if not big_unit and not (num.isdigit() and len(num) >= 3):
                continue  # "工资十二" is too thin; "欠了我5000" is fine
        value = cn_number(num)
        if value is None:
            continue
        if unit == "万":
            value *= 10_000
        elif unit == "亿":
            value *= 100_000_000
        if value <= 0:
            continue
        out.append(Amount(value, m.start(), m.end()))
    return out


_EN_MONEY_DIGITS = re.compile(
    r"\$\s?(?P<a>\d[\d,]*(?:\.\d+)?)(?:\s?(?P<as>k|thousand|million|hundred)\b)?"
    r"|(?P<b>\d[\d,]*(?:\.\d+)?)\s?(?P<bs>k|thousand|million|hundred)?\s?(?:dollars|bucks|usd|yuan|rmb|kuai)\b"
)
_EN_NUMBER_WORDS = "|".join(list(EN_UNITS)[3:] + list(EN_TENS) + ["hundred", "thousand", "million", "and", "a"])
_EN_MONEY_WORDS = re.compile(
    rf"\b(?P<w>(?:(?:{_EN_NUMBER_WORDS})[\s-]+)*(?:{_EN_NUMBER_WORDS}))\s+(?:dollars|bucks|yuan)\b"
)


def english_number(words: str) -> float | None:
    """"twelve hundred" → 1200, "two thousand five hundred" → 2500, "fifty" → 50."""
    total, current, seen = 0, 0, False
    for w in re.split(r"[\s-]+", words.strip()):
        if w in ("and", "a", ""):
            if w == "a":
                current = current or 1
            continue
        if w in EN_UNITS:
            current += EN_UNITS[w]
        elif w in EN_TENS:
            current += EN_TENS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w in ("thousand", "million"):
            total += (current or 1) * EN_SCALES[w]
            current = 0
        else:
            return None
        seen = True
    return float(total + current) if seen else None


def _en_money(text: str) -> list[Amount]:
    out = []
    for m in _EN_MONEY_DIGITS.finditer(text):
        raw = (m.group("a") or m.group("b") or "").replace(",", "")
        scale = m.group("as") or m.group("bs")
        try:
            value = float(raw)
        except ValueError:
            continue
        if scale:
            value *= EN_SCALES[scale]
        if value > 0:
            out.append(Amount(value, m.start(), m.end()))
    for m in _EN_MONEY_WORDS.finditer(text):
        if any(a.start <= m.start() < a.end for a in out):
            continue
        words_value = english_number(m.group("w"))
        if words_value:
            out.append(Amount(words_value, m.start(), m.end()))
    return out


def money_amounts(text: str, language: str) -> list[Amount]:
    """Money said in ``text`` (lower-case for English), in order of appearance."""
    found = _zh_money(text) if language == "zh" else _en_money(text)
    if language == "zh" and re.search(r"[$]|dollar|元", text) and re.search(r"[a-z]", text):
        found += _en_money(text)
    return sorted(found, key=lambda a: a.start)


# ---------------------------------------------------------------------------------------------- ages
_ZH_AGE = re.compile(r"(?P<n>[0-9零两一二三四五六七八九十百]{1,4})(?:多|来)?(?:周)?岁")
_ZH_DECADE = re.compile(r"(?P<n>[五六七八九])旬")
_EN_AGE = re.compile(
    rf"\b(?P<n>\d{{1,3}}|(?:{'|'.join(EN_TENS)})(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine))?|"
    rf"(?:{'|'.join(list(EN_UNITS)[1:])}))[\s-]+(?:years?|yrs?)[\s-]+old\b"
    r"|\baged\s+(?P<m>\d{1,3})\b"
    r"|\bin\s+(?:his|her|their|my)\s+(?:(?P<d>sixties|seventies|eighties|nineties)\b|(?P<dd>[1-9]0)'?s\b)"
)
_DECADES = {"sixties": 60, "seventies": 70, "eighties": 80, "nineties": 90}
_PERSON_EN = (r"mother|father|mom|mum|dad|grandmother|grandfather|grandma|grandpa|wife|husband|he|she|"
              r"neighbou?r|aunt|uncle|son|daughter|baby|kid|child|parents?|i")
_EN_PERSON_AGE = re.compile(
    rf"\b(?:{_PERSON_EN})(?:'s|'m| is| am| are| just turned| turned| will be)\s+(?:now\s+|only\s+|just\s+)?"
    rf"(?P<n>\d{{1,3}}|(?:{'|'.join(EN_TENS)})(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine))?|"
    rf"(?:{'|'.join(list(EN_UNITS)[1:])}))(?![\w-])(?!\s+(?:percent|degrees|street|st|avenue|road|dollars|minutes))"
)
_ZH_PERSON_AGE = re.compile(
    r"(?:妈|爸|母亲|父亲|奶奶|爷爷|姥姥|姥爷|老人|老太太|老爷子|大爷|大妈|孩子|他|她|我)(?:今年|都|已经|才|刚)*"
    r"(?P<n>[一二三四五六七八九十]{2,3}|[1-9]\d)(?:多)?了"
)


def ages(text: str, language: str) -> list[Age]:
    """Ages said in ``text``: "七十多岁" → 70, "七旬" → 70, "80-year-old" → 80, "in her eighties" → 80."""
    out = []
    if language == "zh":
        for m in _ZH_AGE.finditer(text):
            value = cn_number(m.group("n"))
            if value is not None and 0 < value < 130:
                out.append(Age(int(value), m.start(), m.end()))
        for m in _ZH_DECADE.finditer(text):
            out.append(Age(int(CN_DIGIT[m.group("n")]) * 10, m.start(), m.end()))
        for m in _ZH_PERSON_AGE.finditer(text):
            value = cn_number(m.group("n"))
            if value is not None and 0 < value < 130 and not any(a.start <= m.start("n") < a.end for a in out):
                out.append(Age(int(value), m.start("n"), m.end()))
    else:
        for m in _EN_AGE.finditer(text):
            if m.group("d"):
                years = _DECADES[m.group("d")]
            elif m.group("dd"):
                years = int(m.group("dd"))
            else:
                raw = m.group("n") or m.group("m")
                years = int(raw) if raw.isdigit() else int(english_number(raw) or 0)
            if 0 < years < 130:
                out.append(Age(years, m.start(), m.end()))
        for m in _EN_PERSON_AGE.finditer(text):
            raw = m.group("n")
            years = int(raw) if raw.isdigit() else int(english_number(raw) or 0)
            if 0 < years < 130 and not any(a.start <= m.start("n") < a.end for a in out):
                out.append(Age(years, m.start("n"), m.end()))
    return out
