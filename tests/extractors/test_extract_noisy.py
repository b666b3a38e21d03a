"""The same calls as speech recognition may write them: no punctuation, Traditional characters, spoken or
Arabic digits, homophones. Every variant must give the same ticket fields as the clean text."""

from __future__ import annotations

import re
from functools import cache

import pytest
from extract_helpers import ticket_of

BASE = [
    # (caller text with {phone} where the number goes, category, urgency, surname, phone digits)
    ("我们小区从昨天开始停水了到现在还没来水，我姓吴，电话{phone}", "utilities.water", "urgent", "吴",
     "18810012345"),
    ("楼上卫生间漏水，已经渗到我家天花板了，我姓冯，手机{phone}", "housing.repair", "normal", "冯", "13012345678"),
    ("楼道里有很大的煤气味，好像是燃气泄漏了，免贵姓孙，电话{phone}", "utilities.gas", "emergency", "孙",
     "13911023456"),
    ("我们这条街的路灯坏了好几盏，晚上黑漆漆的，我姓杨，联系电话{phone}", "city.street_light", "normal", "杨",
     "15811223344"),
    ("隔壁装修噪音太大了，早上七点就开始砸墙，我是刘女士，电话{phone}", "environment.noise", "normal", "刘",
     "13522334455"),
    ("小区门口马路上有个大坑，晚上骑车特别危险，我姓郭，电话{phone}", "traffic.road", "urgent", "郭",
     "17710022333"),
]
DIGITS = "零一二三四五六七八九"


def spoken(number: str) -> str:
    return "".join(DIGITS[int(d)] for d in number)


def grouped(number: str) -> str:
    return f"{number[:3]} {number[3:7]} {number[7:]}"


def yao(number: str) -> str:
    return spoken(number).replace("一", "幺")


@cache
def _s2t():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("s2t")


def traditional(text: str) -> str:
    return _s2t().convert(text)


def unpunctuated(text: str) -> str:
    return re.sub(r"[，。、？！,.?!]", "", text)


PHONE_FORMS = {"arabic": str, "spoken": spoken, "grouped": grouped, "yao": yao}
TEXT_FORMS = {"clean": lambda t: t, "unpunctuated": unpunctuated, "traditional": traditional,
              "both": lambda t: traditional(unpunctuated(t))}


@pytest.mark.parametrize("text_form", list(TEXT_FORMS))
@pytest.mark.parametrize("phone_form", list(PHONE_FORMS))
@pytest.mark.parametrize(("template", "category", "urgency", "surname", "phone"), BASE)
def test_noisy_variants_give_the_same_fields(template: str, category: str, urgency: str, surname: str,
                                             phone: str, phone_form: str, text_form: str) -> None:
    text = TEXT_FORMS[text_form](template.format(phone=PHONE_FORMS[phone_form](phone)))
    draft = ticket_of(text)
    assert (draft.category, draft.urgency, draft.caller_surname, draft.callback_number) == (
        category, urgency, surname, phone)


HOMOPHONES = [
    ("楼上露水把我家天花板泡了", "housing.repair"),
    ("我们楼想家装电梯一楼不同意", "housing.elevator_retrofit"),
    ("家里暖器不热", "utilities.heating"),
    ("楼下有烟太大了窗户都不敢开", "environment.pollution"),
    ("我们这挺水了", "utilities.water"),
    ("物叶不管事", "housing.property_management"),
]


@pytest.mark.parametrize(("text", "category"), HOMOPHONES)
def test_common_asr_homophones(text: str, category: str) -> None:
    assert ticket_of(text).category == category
