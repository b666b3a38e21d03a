"""Callback number and caller surname, from caller speech only."""

from __future__ import annotations

import pytest
from extract_helpers import ticket_of

CALLBACK = [
    ("我姓王，电话13911023456", "13911023456"),
    ("电话一三六一一二二四四五五", "13611224455"),
    ("手机号幺三八幺二三四五六七八", "13812345678"),
    ("我的手机是一八八 一零零一 二三四五", "18810012345"),
    ("你打这个号码吧 139 1102 3456", "13911023456"),
    ("联系电话 010-6381-2234", "01063812234"),
    ("座机零一零六三八一二二三四", "01063812234"),
    ("座机是六三八一二二三四", "01063812234"),
    ("电话是+86 139 1102 3456", "13911023456"),
    ("電話一三六一一二二四四五五", "13611224455"),                                # Traditional
    ("我的电话是一三六一一二二四四五五我姓陈", "13611224455"),                      # run-on, no punctuation
    ("my number is five five five, eight seven six, five four three two", "5558765432"),
    ("you can reach me at 555-876-5432", "5558765432"),
    ("call me back on two oh two, double five five, one two one two", "2025551212"),
    ("my cell is (312) 555-0199", "3125550199"),
    ("five five five two one nine four four eight one", "5552194481"),
]


@pytest.mark.parametrize(("sentence", "number"), CALLBACK)
def test_callback_number(sentence: str, number: str) -> None:
    draft = ticket_of(sentence)
    assert draft.callback_number == number
    assert draft.evidence["callback_number"][0].speaker == "caller"


def test_agent_reading_back_a_number_is_not_the_callback() -> None:
    draft = ticket_of(("agent", "您的电话是13800000000吗？"), ("caller", "不是，是一三九一一零二三四五六"))
    assert draft.callback_number == "13911023456"


def test_a_number_cut_from_a_longer_digit_string_is_flagged() -> None:
    draft = ticket_of("电话是189-01-202-03-04")
    assert draft.callback_number == "18901202030"
    assert "callback_number" in draft.needs_review


def test_no_number_is_none_and_flagged() -> None:
    draft = ticket_of("我们小区停水了")
    assert draft.callback_number is None
    assert "callback_number" in draft.needs_review


def test_a_number_that_fails_validation_is_flagged() -> None:
    draft = ticket_of("电话是一二三四五六七八九")
    assert "callback_number" in draft.needs_review
    assert draft.confidence["callback_number"] < 0.5


SURNAME = [
    ("我姓陈，电话一三六一一二二四四五五", "陈"),
    ("免贵姓杨", "杨"),
    ("免贵姓欧阳", "欧阳"),
    ("我姓张弓长张", "张"),
    ("我姓弓长张", "张"),
    ("姓王，三横王", "王"),
    ("我是李先生", "李"),
    ("我是赵女士，住在三号楼", "赵"),
    ("你叫我小刘就行", "刘"),
    ("我叫王建国", "王"),
    ("我性陈", "陈"),                                      # homophone of 姓
    ("我姓逢，电话一三零一二三四五六七八", "冯"),             # rare homophone heard for a common surname
    ("我姓和电话一三九零一二三一二三一", "何"),
    ("我姓密云区古楼街道的，我姓韩", "韩"),                  # 我是 misheard as 我姓: no such surname, next one
    ("我姓吴电话一八八一零零一二三四五", "吴"),               # no punctuation
    ("我們老百姓太難了", None),
    ("我叫了物业好几次都没人来", None),
    ("楼下大爷天天放音乐", None),
    ("Hi, this is Sarah Collins, I live on Elm Street", "Collins"),
    ("My name is david chen and I'm calling about the noise", "Chen"),
    ("This is Mr. Wilson from apartment 4B", "Wilson"),
    ("My last name is Okafor", "Okafor"),
    ("I'm calling about the pothole", None),
    ("This is a serious problem", None),
    ("My name is Anna Novak, N-O-V-A-K", "Novak"),
    ("James Wilson 555 222 9988", "Wilson"),
    ("Okay. Laura Benton, five five five, one two three, four five six seven", "Benton"),
    ("Pine Street, near the corner", None),
]


@pytest.mark.parametrize(("sentence", "surname"), SURNAME)
def test_caller_surname(sentence: str, surname: str | None) -> None:
    assert ticket_of(sentence).caller_surname == surname


def test_surname_answering_the_agent() -> None:
    draft = ticket_of(("agent", "您贵姓？"), ("caller", "孙，电话幺三九一一零二三四五六"))
    assert draft.caller_surname == "孙"


@pytest.mark.parametrize(("answer", "surname"), [("王。", "王"), ("我是王，电话一三九一一零二三四五六", "王"),
                                               ("姓欧阳", "欧阳"), ("嗯，赵先生", "赵"), ("不方便说", None)])
def test_short_answers_to_the_name_question(answer: str, surname: str | None) -> None:
    draft = ticket_of(("agent", "请问您怎么称呼？"), ("caller", answer))
    assert draft.caller_surname == surname


def test_english_name_answering_the_agent() -> None:
    draft = ticket_of(("agent", "Can I have your name please?"), ("caller", "Maria Lopez."))
    assert draft.caller_surname == "Lopez"


def test_agent_greeting_does_not_give_a_surname() -> None:
    draft = ticket_of(("agent", "您好，我是王女士，请问有什么可以帮您"), ("caller", "我们小区停电了"))
    assert draft.caller_surname is None


def test_agent_read_back_in_mono_is_skipped_and_a_correction_wins() -> None:
    draft = ticket_of(("mixed", "我姓王，电话一三九一一零二三四五七"),
                      ("mixed", "您的电话是一三九一一零二三四五七对吗？"),
                      ("mixed", "不对，是一三九一一零二三四五六"))
    assert draft.callback_number == "13911023456"


def test_english_correction() -> None:
    draft = ticket_of("My number is 555-201-3344, sorry, it's 555-201-3345.")
    assert draft.callback_number == "5552013345"


@pytest.mark.parametrize(("sentence", "number"), [("call me at 1-555-876-5432", "5558765432"),
                                                  ("电话是+86 139 1102 3456", "13911023456")])
def test_country_codes_are_not_extra_digits(sentence: str, number: str) -> None:
    draft = ticket_of(sentence)
    assert draft.callback_number == number
    assert "callback_number" not in draft.needs_review


def test_the_recognisers_prompt_example_number_is_never_trusted() -> None:
    from pipeline.asr.prompts import domain_prompt

    # the number written in the Mandarin domain prompt is one the recogniser can copy on unclear audio
    assert "一三九一一零二二三四四" in (domain_prompt("zh") or "")
    draft = ticket_of("我姓刘，电话一三九一一零二二三四四")
    assert draft.callback_number == "13911022344"
    assert "callback_number" in draft.needs_review
    assert draft.confidence["callback_number"] < 0.5
    assert draft.evidence["callback_number"][0].rule.endswith(":prompt_echo")
    assert "callback_number" not in ticket_of("我姓刘，电话一三九一一零二二三四五").needs_review


def test_the_prompt_examples_surname_goes_to_review() -> None:
    # the prompt's example answer is 我姓张; a 张 may be the caller's or the recogniser copying its prompt
    assert "我姓张" in (__import__("pipeline.asr.prompts", fromlist=["x"]).domain_prompt("zh") or "")
    draft = ticket_of("我姓张，电话一三八一二三四五六七八")
    assert draft.caller_surname == "张"
    assert "caller_surname" in draft.needs_review
    assert draft.evidence["caller_surname"][0].rule.endswith(":prompt_echo")
    assert "caller_surname" not in ticket_of("我姓王，电话一三八一二三四五六七八").needs_review


def test_a_number_with_restored_digits_goes_to_review() -> None:
    from datetime import datetime

    from pipeline.extractors import extract_ticket
    from pipeline.transcript import Segment, Transcript

    def draft(repairs: list[dict[str, object]]):  # type: ignore[no-untyped-def]
        transcript = Transcript.from_segments(
            "zh", [Segment(0.0, 3.0, "caller", "我姓王，电话一五八一一二二三三四四")],
            options={"number_repairs": repairs})
        return extract_ticket(transcript, received_at=datetime(2026, 5, 1, 9, 0).astimezone())

    restored = draft([{"speaker": "caller", "heard": "一五八一二二三三四四", "restored": "一五八一一二二三三四四",
                       "digits": "15811223344"}])
    assert restored.callback_number == "15811223344"
    assert "callback_number" in restored.needs_review
    assert restored.evidence["callback_number"][0].rule == "callback:cn_mobile:restored"
    assert "callback_number" not in draft([]).needs_review
    other = draft([{"speaker": "caller", "digits": "13910237786"}])  # another number of the call restored
    assert "callback_number" not in other.needs_review
