"""Whole calls: stereo JSON with agent and caller segments, mono transcripts, .txt files, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from extract_helpers import RECEIVED, make_transcript, ticket_of

from pipeline.errors import ExtractionError
from pipeline.extractors import RULES_VERSION, extract_file, extract_ticket
from pipeline.extractors.context import prepare_call
from pipeline.extractors.rules import load_rules
from pipeline.ticket import FIELDS

HOTLINE = ZoneInfo("Asia/Shanghai")

STEREO_ZH = {
    "language": "zh",
    "received_at": "2026-03-02T10:00:00+08:00",
    "segments": [
        {"speaker": "agent", "start": 0.0, "end": 3.2, "text": "您好，市民服务热线，请问有什么可以帮您？"},
        {"speaker": "caller", "start": 3.5, "end": 11.0,
         "text": "你好，我住在朝阳区和平街街道，我们楼下新开了一家烧烤店，每天晚上油烟特别大，"
                 "家里有个八十岁的老人，呛得直咳嗽。"},
        {"speaker": "agent", "start": 11.2, "end": 13.0, "text": "您贵姓？联系电话是多少？"},
        {"speaker": "caller", "start": 13.3, "end": 18.0, "text": "我姓郑，电话幺三九，一一零二，三四五六。"},
        {"speaker": "agent", "start": 18.2, "end": 23.0,
         "text": "好的，您反映的问题已经记录，我们会尽快转交相关部门办理，请保持电话畅通。"},
    ],
}


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_stereo_json_call(tmp_path: Path) -> None:
    draft = extract_file(_write(tmp_path, "call.json", STEREO_ZH), zone=HOTLINE)
    assert draft.category == "environment.pollution"
    assert draft.request_type == "complaint"
    assert draft.urgency == "normal"
    assert draft.district == "朝阳区"
    assert draft.street == "和平街街道"
    assert draft.department == "朝阳区生态环境局"
    assert draft.callback_number == "13911023456"
    assert draft.caller_surname == "郑"
    assert draft.vulnerable == ("elderly",)
    assert draft.language == "zh"
    assert draft.due_at == datetime.fromisoformat("2026-03-09T10:00:00+08:00")
    assert draft.summary.startswith("朝阳区和平街街道")
    assert "油烟" in draft.summary
    assert draft.rules_version == RULES_VERSION
    # every filled field has evidence from the caller's speech
    out = draft.to_dict()
    for name in ("request_type", "category", "district", "street", "callback_number", "caller_surname",
                 "vulnerable", "summary"):
        spans = out["evidence"][name]
        assert spans, name
        for span in spans:
            assert span["speaker"] == "caller", name
            assert span["start_s"] is not None and span["start_s"] >= 3.5
    phone = out["evidence"]["callback_number"][0]
    text = " ".join(s["text"] for s in STEREO_ZH["segments"])
    assert text[phone["start_char"]:phone["end_char"]] == phone["text"]


def test_same_call_mono_finds_the_same_fields(tmp_path: Path) -> None:
    mono = {"segments": [{**s, "speaker": "mixed"} for s in STEREO_ZH["segments"]]}
    draft = extract_file(_write(tmp_path, "mono.json", mono), zone=HOTLINE)
    assert (draft.category, draft.district, draft.callback_number, draft.caller_surname) == (
        "environment.pollution", "朝阳区", "13911023456", "郑")
    assert draft.language == "zh"  # detected from the script


def test_mono_call_in_one_unpunctuated_segment() -> None:
    text = ("您好市民服务热线请问有什么可以帮您我们小区从昨天开始停电了冰箱里的东西都坏了"
            "您贵姓我姓孙电话一三九一一零二三四五六好的您反映的问题已经记录")
    draft = ticket_of(("mixed", text))
    assert draft.category == "utilities.power"
    assert draft.urgency == "urgent"
    assert draft.caller_surname == "孙"
    assert draft.callback_number == "13911023456"


def test_mono_traditional_call() -> None:
    draft = ticket_of(("mixed", "您好，市民服務熱線，請問有什麼可以幫您？"),
                      ("mixed", "我們家暖氣不熱，家裡有老人。我姓黃，電話一三六一一二二四四五五。"))
    assert draft.category == "utilities.heating"
    assert draft.urgency == "urgent"
    assert draft.caller_surname == "黄"
    assert draft.vulnerable == ("elderly",)
    assert "暖气" in draft.summary  # Simplified in the output


def test_turns_json_english(tmp_path: Path) -> None:
    data = {"turns": [
        ["agent", "City services hotline, how can I help you?"],
        ["caller", "Hi, this is Daniel Brooks. The street light outside 17 Cedar Lane has been out for a week "
                   "and it's pitch dark, my elderly neighbour almost fell."],
        ["agent", "What number can we reach you on?"],
        ["caller", "Five five five, three one two, eight eight four zero."],
        ["agent", "Thank you, I have logged your request."],
    ]}
    draft = extract_file(_write(tmp_path, "en.json", data), zone=HOTLINE)
    assert draft.language == "en"
    assert draft.category == "city.street_light"
    assert draft.request_type == "report"
    assert draft.caller_surname == "Brooks"
    assert draft.callback_number == "5553128840"
    assert draft.vulnerable == ("elderly",)
    assert draft.district is None
    assert draft.department == "北京市城市管理委员会"
    assert draft.summary and draft.summary[0].isupper() and "street light" in draft.summary.lower()


def test_english_mono_agent_script_is_skipped() -> None:
    draft = ticket_of(("mixed", "City services hotline, how can I help? My water has been off since this "
                                "morning. Can I have your name? Priya Shah. What number can we reach you on? "
                                "Five five five, two two two, one one one one. I have logged your request."))
    assert draft.category == "utilities.water"
    assert draft.caller_surname == "Shah"
    assert draft.callback_number == "5552221111"


def test_txt_file_with_speaker_prefixes(tmp_path: Path) -> None:
    path = _write(tmp_path, "call.txt", "agent: 您好，请问有什么可以帮您？\ncaller: 我们家楼上漏水，我姓何。\n")
    draft = extract_file(path, zone=HOTLINE)
    assert draft.category == "housing.repair"
    assert draft.caller_surname == "何"
    assert draft.evidence["category"][0].speaker == "caller"


def test_plain_txt_file_is_mixed(tmp_path: Path) -> None:
    draft = extract_file(_write(tmp_path, "call.txt", "你好我们小区门口垃圾好几天没人清运了\n"), zone=HOTLINE)
    assert draft.category == "city.sanitation"
    assert draft.evidence["category"][0].speaker == "mixed"
    assert draft.due_at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"segments": [{"speaker": "caller"}]}',
                                     '{"words": []}', '{"turns": [["caller"]]}', '{"segments": []}'])
def test_bad_json_files_raise_extraction_error(tmp_path: Path, content: str) -> None:
    with pytest.raises(ExtractionError) as info:
        extract_file(_write(tmp_path, "bad.json", content), zone=HOTLINE)
    assert "bad.json" in str(info.value)


def test_every_field_is_in_the_contract_json() -> None:
    out = ticket_of("我们小区停水了").to_dict()
    assert set(FIELDS) <= set(out)
    assert out["due_at"].startswith("2026-03-03T09:30:00")


def test_caller_fields_never_come_from_the_agent() -> None:
    draft = ticket_of(("agent", "您好，这里是朝阳区热线，您是不是停水了？我姓王，电话13900000000"),
                      ("caller", "不是，我们楼下太吵了"))
    assert draft.category == "environment.noise"
    assert draft.district is None
    assert draft.caller_surname is None
    assert draft.callback_number is None


def test_roles_in_mono_calls() -> None:
    transcript = make_transcript(
        [("mixed", "您好，市民服务热线，请问有什么可以帮您？我们小区停水了。您贵姓？免贵姓林。")])
    call = prepare_call(transcript, received_at=RECEIVED, rules=load_rules())
    caller = [call.text[s:e] for s, e in call.roles.caller]
    agent = [call.text[s:e] for s, e in call.roles.agent]
    assert "我们小区停水了" in caller and "免贵姓林" in caller
    assert any("热线" in a for a in agent) and "您贵姓" in agent


MONO_RUN_ON = [
    # agent and caller in one unpunctuated segment: only the script words are the agent's
    ("您好12345热线我们小区停电了", "utilities.power", None),
    ("您好市民服务热线请问有什么可以帮您我们这边路灯坏了您贵姓我姓罗", "city.street_light", "罗"),
    ("您好热线请讲楼下饭店油烟太大了请问您贵姓免贵姓邱", "environment.pollution", "邱"),
    ("City services hotline how can I help my power is out can I have your name Nina Patel",
     "utilities.power", "Patel"),
]


@pytest.mark.parametrize(("text", "category", "surname"), MONO_RUN_ON)
def test_mono_run_on_segments(text: str, category: str, surname: str | None) -> None:
    draft = ticket_of(("mixed", text))
    assert draft.category == category
    assert draft.caller_surname == surname
    assert "热线" not in draft.summary and "hotline" not in draft.summary.lower()


@pytest.mark.parametrize(("turns", "language"), [
    ([("caller", "我们小区停水了已经两天了")], "en"),        # a wrong label is overruled by the script
    ([("caller", "The power has been out since noon")], "zh"),
])
def test_language_label_that_contradicts_the_words(turns: list[tuple[str, str]], language: str) -> None:
    draft = extract_ticket(make_transcript(turns, language), received_at=RECEIVED)
    assert draft.language != language


def test_empty_transcript_gives_a_ticket_flagged_for_review() -> None:
    from pipeline.transcript import Transcript

    draft = extract_ticket(Transcript("zh", ()), received_at=RECEIVED)
    assert draft.category == "other"
    assert "category" in draft.needs_review


def test_cli_extract_json(tmp_path: Path) -> None:
    path = _write(tmp_path, "call.json", STEREO_ZH)
    bad = _write(tmp_path, "bad.json", "{")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "extract", "--json", str(path), str(bad)],
                          capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[2])
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0
    assert rows[0]["ticket"]["category"] == "environment.pollution"
    assert rows[0]["ticket"]["callback_number"] == "13911023456"
    assert "error" in rows[1]


ASK = ("agent", "City services hotline, how can I help you today?")
ENGLISH_CALLS = [
    # (turns, category, request_type, urgency, surname, phone, vulnerable)
    ([ASK, ("caller", "Yeah hi, um, the sidewalk in front of 310 Birch Road is cracked and lifting, my neighbor "
                      "who uses a wheelchair can't get past."),
      ("agent", "Can I take your name and number?"),
      ("caller", "Sure, it's Robert Nguyen, N-G-U-Y-E-N, and my number is two one two, five five five, zero one "
                 "nine eight.")],
     "traffic.road", "report", "normal", "Nguyen", "2125550198", ("disabled",)),
    ([ASK, ("caller", "Hello, I'm calling to complain about the bar on Fifth Street. They play music until 3 a.m. "
                      "every weekend."),
      ("agent", "Who am I speaking to?"), ("caller", "Mrs. Alvarez. You can call me on 555 0143 222.")],
     "environment.noise", "complaint", "normal", "Alvarez", "5550143222", ()),
    ([ASK, ("caller", "Hi there, my name's Kate O'Brien. I just wanted to say thank you to the crew that cleared "
                      "the snow on our street so quickly, great job."),
      ("agent", "That's kind of you. Can I get a number?"),
      ("caller", "Sure, five five five, nine eight seven, six five four three.")],
     "weather.disaster", "praise", "normal", "O'Brien", "5559876543", ()),
    ([ASK, ("caller", "My landlord has not turned the heat on and it's November, I have two small kids. "
                      "This is Ahmed Hassan, 555-302-1188.")],
     "utilities.heating", "help", "urgent", "Hassan", "5553021188", ("child",)),
    ([ASK, ("caller", "There's water pouring through my kitchen ceiling from the apartment above, it's getting "
                      "into the electrical sockets!"),
      ("agent", "What's your name?"), ("caller", "Linda Park. Phone is 555 774 1290.")],
     "housing.repair", "help", "emergency", "Park", "5557741290", ()),
]


@pytest.mark.parametrize(("turns", "category", "request_type", "urgency", "surname", "phone", "vulnerable"),
                         ENGLISH_CALLS)
def test_english_calls(turns: list[tuple[str, str]], category: str, request_type: str, urgency: str,
                       surname: str, phone: str, vulnerable: tuple[str, ...]) -> None:
    for variant in (turns, [("mixed", text) for _, text in turns]):
        draft = ticket_of(*variant)
        assert (draft.category, draft.request_type, draft.urgency) == (category, request_type, urgency)
        assert (draft.caller_surname, draft.callback_number, draft.vulnerable) == (surname, phone, vulnerable)
        assert draft.language == "en"
        assert draft.department.startswith(("北京市", "1"))
