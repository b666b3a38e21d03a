"""Spoken numbers: digit strings, money, ages."""

from __future__ import annotations

import pytest

from pipeline.text.numerals import ages, cn_number, digit_runs, english_digit_runs, english_number, money_amounts

DIGITS = [
    ("电话一三六一一二二四四五五", ["13611224455"]),
    ("手机幺三八 幺二三四 五六七八", ["13812345678"]),
    ("电话腰三腰二零零八六六四二", ["13120086642"]),      # 幺 written as its homophone 腰
    ("我腰疼了三四天", []),                                # 腰 alone is no digit
    ("号码是136 1122 4455", ["13611224455"]),
    ("010-6381-2234", ["01063812234"]),
    ("138一二三四5678", ["13812345678"]),
    ("一八八，一零零一，二三四五", ["18810012345"]),
    ("电话是零一零六二三四五六七八", ["01062345678"]),
    ("两个孩子一个老人", []),
    ("住在三号楼二单元", []),
]


@pytest.mark.parametrize(("text", "expected"), DIGITS)
def test_digit_runs(text: str, expected: list[str]) -> None:
    assert [r.digits for r in digit_runs(text, min_digits=7)] == expected


EN_DIGITS = [
    ("five five five, eight seven six, five four three two", ["5558765432"]),
    ("call me at 555-876-5432", ["5558765432"]),
    ("it's two oh two, double five five, one two one two", ["2025551212"]),
    ("five fifty-five, two one nine, forty-four eighty-one", ["5552194481"]),
    ("triple five, one two three, four five six seven", ["5551234567"]),
    ("i have lived here for five years", []),
]


@pytest.mark.parametrize(("text", "expected"), EN_DIGITS)
def test_english_digit_runs(text: str, expected: list[str]) -> None:
    assert [r.digits for r in english_digit_runs(text, min_digits=7)] == expected


MONEY_ZH = [
    ("房子一共一百三十三万元", [1330000]),
    ("定金交了三十万", [300000]),
    ("定金交了30万", [300000]),
    ("充了八千块", [8000]),
    ("他欠我工资两千五", [2500]),
    ("办卡花了三千多块钱", [3000]),
    ("交了2000元押金", [2000]),
    ("三十多万的房款", [300000]),
    ("一共欠了一万二的工资", [12000]),
    ("我买了一百多万的房子", [1000000]),
    ("住了三十多年了", []),
    ("小区一共三十多万户", []),
    ("我家在三号楼五层", []),
    ("门口有一块地", []),
    ("家里七十多岁的老人", []),
    ("电话一三六一一二二四四五五", []),
]


@pytest.mark.parametrize(("text", "expected"), MONEY_ZH)
def test_money_zh(text: str, expected: list[float]) -> None:
    assert [a.value for a in money_amounts(text, "zh")] == expected


MONEY_EN = [
    ("i paid $1,200 for the membership", [1200]),
    ("they charged me 1,200 dollars", [1200]),
    ("it was twelve hundred dollars", [1200]),
    ("two thousand five hundred dollars in back pay", [2500]),
    ("a deposit of $45.50", [45.5]),
    ("about 5k dollars", [5000]),
    ("i have lived here for twelve years", []),
]


@pytest.mark.parametrize(("text", "expected"), MONEY_EN)
def test_money_en(text: str, expected: list[float]) -> None:
    assert [a.value for a in money_amounts(text, "en")] == expected


AGES = [
    ("家里有个七十多岁的老人", "zh", [70]),
    ("我母亲今年85岁", "zh", [85]),
    ("孩子才三岁", "zh", [3]),
    ("年过七旬", "zh", [70]),
    ("我妈都八十一了", "zh", [81]),
    ("my 80-year-old mother", "en", [80]),
    ("she is in her eighties", "en", [80]),
    ("my mom is in her 80s", "en", [80]),
    ("my father is ninety two", "en", [92]),
    ("a seven year old boy", "en", [7]),
    ("the noise is ninety decibels", "en", []),
]


@pytest.mark.parametrize(("text", "language", "expected"), AGES)
def test_ages(text: str, language: str, expected: list[int]) -> None:
    assert [a.years for a in ages(text, language)] == expected


@pytest.mark.parametrize(("text", "value"), [("一百三十三万", 1330000), ("1.5万", 15000), ("两千五", 2500),
                                             ("一千零五十", 1050), ("3,000", 3000), ("十二", 12)])
def test_cn_number(text: str, value: float) -> None:
    assert cn_number(text) == value


@pytest.mark.parametrize(("words", "value"), [("twelve hundred", 1200), ("two thousand five hundred", 2500),
                                              ("fifty", 50), ("a hundred and five", 105), ("ninety-nine", 99)])
def test_english_number(words: str, value: float) -> None:
    assert english_number(words) == value
