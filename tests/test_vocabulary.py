"""Respelling sound-alike places and hotline terms in recognised Mandarin, without touching ordinary speech."""

from __future__ import annotations

import pytest

from pipeline.asr.vocabulary import Correction, DomainVocabulary, default_vocabulary
from pipeline.transcript import Segment, Transcript


@pytest.fixture(scope="module")
def vocab() -> DomainVocabulary:
    return default_vocabulary()


@pytest.mark.parametrize(("heard", "expected"), [
    # places, through the gazetteer's sound-alike recovery
    ("我家在海电区学院路", "我家在海淀区学院路"),
    ("我住石景珊区八角街道", "我住石景山区八角街道"),
    ("门头勾区大峪街道这边", "门头沟区大峪街道这边"),
    ("大兴区旧宫阵那边", "大兴区旧宫镇那边"),
    ("朝阳区酒仙桥街到", "朝阳区酒仙桥街道"),
    ("我们是昌平区回龙馆的", "我们是昌平区回龙观的"),
    ("房山区琉璃合镇的村里", "房山区琉璃河镇的村里"),
    # hotline terms heard as homophones or near sounds
    ("楼下工地施工造音很大", "楼下工地施工噪音很大"),
    ("您好是民服务热线", "您好市民服务热线"),
    ("您好是名服务乐宪请问有什么可以帮您", "您好市民服务热线请问有什么可以帮您"),
    ("一直在讨要公资没人管", "一直在讨要工资没人管"),
    ("我们这暖器不热好几天了", "我们这暖气不热好几天了"),
    ("小区想家装电梯", "小区想加装电梯"),
    ("好的请保持电话唱通", "好的请保持电话畅通"),
    ("我们会尽快转交相关部门办里", "我们会尽快转交相关部门办理"),
    ("附近有一片违张建筑", "附近有一片违章建筑"),
    ("路边的下水道赌塞了", "路边的下水道堵塞了"),
])
def test_sound_alikes_are_respelled(vocab: DomainVocabulary, heard: str, expected: str) -> None:
    corrected, corrections = vocab.correct_text(heard)
    assert corrected == expected
    assert corrections and all(len(c.heard) == len(c.corrected) for c in corrections)


@pytest.mark.parametrize("text", [
    "我们一起去吃饭了，他是个好人",
    "今天天气很好我们去公园玩了一下午",
    "我想问一下孩子上学的事情怎么办理",
    "相关部门办理得很快，谢谢你们",
    "楼上邻居每天晚上弹钢琴",
    "我觉得这个事情很重要必须说清楚",
    "市场上的菜价最近涨了不少",
    "我是海淀区中关村街道的居民",
    "请问有什么可以帮您",
    "电话是一三九一二三四五六七八",
    "Hello, this is the city hotline",
    "",
])
def test_ordinary_and_correct_speech_is_left_alone(vocab: DomainVocabulary, text: str) -> None:
    assert vocab.correct_text(text) == (text, [])


def test_no_dictionary_phrase_is_taken_for_a_term() -> None:
    from pypinyin.phrases_dict import phrases_dict

    terms_only = DomainVocabulary(default_vocabulary().terms)
    wrong = [(p, terms_only.correct_text(p)[0]) for p in phrases_dict if len(p) >= 4
             and terms_only.correct_text(p)[1]]
    assert wrong == []


def test_a_correction_says_what_was_heard_and_where(vocab: DomainVocabulary) -> None:
    text, corrections = vocab.correct_text("您好，我住在疯台区")
    assert text == "您好，我住在丰台区"
    assert corrections == [Correction(6, 9, "疯台区", "丰台区", "place")]


def test_transcript_keeps_times_speakers_and_records_corrections(vocab: DomainVocabulary) -> None:
    transcript = Transcript.from_segments("zh", [
        Segment(0.0, 2.0, "agent", "您好是民服务热线", 0.9),
        Segment(2.5, 6.0, "caller", "我家在海电区，楼上造音扰民", 0.8),
        Segment(6.5, 7.0, "agent", "好的", 0.9),
    ], duration=7.0, options={"engine": "faster-whisper"})
    fixed = vocab.correct(transcript)
    assert [s.text for s in fixed.segments] == ["您好市民服务热线", "我家在海淀区，楼上噪音扰民", "好的"]
    assert [(s.start, s.end, s.speaker) for s in fixed.segments] == [
        (s.start, s.end, s.speaker) for s in transcript.segments]
    assert len(fixed.text) == len(transcript.text)
    assert fixed.options["engine"] == "faster-whisper"
    assert fixed.options["vocabulary_corrections"] == [
        {"segment": 0, "start": 2, "heard": "是民服务热线", "corrected": "市民服务热线", "rule": "term"},
        {"segment": 1, "start": 3, "heard": "海电区", "corrected": "海淀区", "rule": "place"},
        {"segment": 1, "start": 9, "heard": "造音扰民", "corrected": "噪音扰民", "rule": "term"},
    ]


def test_english_transcripts_pass_through(vocab: DomainVocabulary) -> None:
    transcript = Transcript.from_segments("en", [Segment(0.0, 2.0, "caller", "Haidian district please", 0.9)])
    assert vocab.correct(transcript) is transcript


@pytest.mark.parametrize("term", ["热线", "噪音 扰民", "noise"])
def test_terms_must_be_four_chinese_characters(term: str) -> None:
    with pytest.raises(ValueError, match="4 or more Chinese characters"):
        DomainVocabulary([term])
