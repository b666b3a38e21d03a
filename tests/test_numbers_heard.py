"""Phone numbers written short are restored by scoring the valid candidates against the caller's audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.asr import load_transcriber
from pipeline.asr.audio import SAMPLE_RATE, decode
from pipeline.asr.numbers_heard import (
    MAX_CANDIDATES,
    arabic,
    is_phone_number,
    restorations,
    restore_numbers,
    spellings,
)
from pipeline.asr.tracks import split_tracks
from pipeline.asr.windows import Window
from pipeline.settings import Settings
from pipeline.transcript import Segment, Word

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"


# -- candidates -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("digits", "valid"), [
    ("13910237786", True), ("1391023786", False), ("139102377861", False),
    ("01065123456", True), ("65123456", True), ("6512345", False), ("12345", False),
    ("12011223344", False),  # no mobile starts 12
])
def test_what_counts_as_a_whole_phone_number(digits: str, valid: bool) -> None:
    assert is_phone_number(digits) is valid


def test_a_mobile_one_digit_short_may_have_any_heard_digit_said_twice() -> None:
    texts = {r.text for r in restorations("一三九一零二三七八六")}
    assert "一三九一零二三七七八六" in texts
    assert "一一三九一零二三七八六" not in texts  # 11… is no mobile
    assert all(len(t) == 11 and is_phone_number(arabic(t)) for t in texts)
    assert len(texts) == 9  # ten digits, one doubling that makes no valid number


def test_a_mobile_that_lost_its_leading_one_gets_it_back() -> None:
    texts = {r.text for r in restorations("三八一零二零三零四零")}
    assert texts == {"一三八一零二零三零四零"}


def test_two_and_three_missing_digits_and_landlines() -> None:
    two = {r.text for r in restorations("一五三一三四四五五")}
    assert "一五三一一三三四四五五" in two and all(len(t) == 11 for t in two)
    assert "一三六一一二二四四五五" in {r.text for r in restorations("一三六一二四四五")}
    assert {r.text for r in restorations("六五一二三四五")} >= {"六六五一二三四五", "六五一二三四五五"}
    assert "零一零六五一二三四五五" in {r.text for r in restorations("零一零六五一二三四五")}


@pytest.mark.parametrize("spoken", [
    "一三九一零二三七七八六",  # valid already
    "一三九一零二三",          # four short: too far off
    "二二三三四四五五六六",    # ten digits that are no number of any kind
    "一二三四五",               # an amount or a house number, not a phone
])
def test_runs_that_are_left_as_written(spoken: str) -> None:
    assert restorations(spoken) == []


def test_a_mobile_with_a_digit_too_many_may_leave_any_one_out() -> None:
    texts = {r.text for r in restorations("一八八一零零零一二三四五")}
    assert {"一八八一零零一二三四五", "一八八零零零一二三四五"} <= texts
    assert all(len(t) == 11 and is_phone_number(arabic(t)) for t in texts)
    assert "一八八一零零零一二三四" not in texts or is_phone_number("18810001234")


def test_arabic_figures_with_hyphens_keep_their_script_and_separators() -> None:
    found = {arabic(r.text): r.text for r in restorations("189-01-202-03-04")}
    assert found["18901020304"] == "189-01-02-03-04"
    assert all(len(d) == 11 for d in found)


@pytest.mark.parametrize("spoken", [
    "15000000",        # an amount in figures: not taken for a mobile three digits short
    "1500000",
    "2023",
    "300000000",       # nine figures: an amount, not a landline with a digit too many
])
def test_arabic_figures_are_mended_only_as_a_mobile_a_digit_off(spoken: str) -> None:
    assert restorations(spoken) == []


def test_arabic_figures_of_a_mobile_one_digit_short() -> None:
    found = {arabic(r.text): r.text for r in restorations("1350123677")}
    assert found["13501236677"] == "13501236677"
    assert all(len(d) == 11 and is_phone_number(d) for d in found)


def test_spellings() -> None:
    assert spellings("13800") == ("一三八零零", "13800")
    assert arabic("幺三八-两〇 1") == "138201"


def test_candidates_are_bounded() -> None:
    assert 0 < len(restorations("一三六一二四四五")) <= MAX_CANDIDATES


# -- choosing among them ----------------------------------------------------------------------------------
def _turn(text: str) -> tuple[Window, Segment]:
    words = tuple(Word(10.0 + 0.25 * i, 10.25 + 0.25 * i, ch) for i, ch in enumerate(text))
    segment = Segment(10.0, 10.0 + 0.25 * len(text), "caller", text, words=words)
    samples = np.zeros(int(SAMPLE_RATE * 0.25 * len(text)), dtype=np.float32)
    window = Window(samples, ((0.0, 0.25 * len(text), segment.start, segment.end),), ("caller",))
    return window, segment


def test_the_best_scored_restoration_is_written_with_its_words() -> None:
    window, segment = _turn("电话一五八一二二三三四四")
    wanted = "电话一五八一一二二三三四四"

    def score(samples: np.ndarray, texts: list[str], language: str) -> list[float]:
        assert len(samples) == len(window.samples)  # the turn's audio (padding clipped to the window)
        return [-1.0 if t == wanted else -3.0 - i for i, t in enumerate(texts)]

    [restored], record = restore_numbers(window, [segment], score, "zh")
    assert restored.text == wanted
    assert "".join(w.text for w in restored.words) == wanted
    assert [w.start for w in restored.words] == [w.start for w in segment.words]
    assert record == [{
        "speaker": "caller", "start": 10.0, "end": segment.end, "heard": "一五八一二二三三四四",
        "restored": "一五八一一二二三三四四", "digits": "15811223344",
        "candidates": len(restorations("一五八一二二三三四四")), "logprob_heard": -3.0, "logprob_restored": -1.0,
    }]


def test_a_candidate_is_scored_in_either_script() -> None:
    """The model may rank the candidates only when they are written in figures: each counts at its
    likelier spelling, and is written in the script it was heard in."""
    window, segment = _turn("电话一八八一零零零一二三四五")

    def score(samples: np.ndarray, texts: list[str], language: str) -> list[float]:
        return [-2.0 if t == "电话18810012345" else -4.0 if t == segment.text else -9.0 for t in texts]

    [restored], [record] = restore_numbers(window, [segment], score, "zh")
    assert restored.text == "电话一八八一零零一二三四五"
    assert (record["digits"], record["logprob_heard"], record["logprob_restored"]) == ("18810012345", -4.0, -2.0)


def test_a_restoration_the_audio_does_not_support_is_not_made() -> None:
    window, segment = _turn("电话一五八一二二三三四四")
    out, record = restore_numbers(window, [segment], lambda s, texts, lang: [0.0] + [-50.0] * (len(texts) - 1), "zh")
    assert out == [segment] and record == []


def test_english_turns_and_valid_numbers_are_not_scored() -> None:
    def score(samples: np.ndarray, texts: list[str], language: str) -> list[float]:
        raise AssertionError("nothing to score")

    window, segment = _turn("电话一三九一零二三七七八六")
    assert restore_numbers(window, [segment], score, "zh") == ([segment], [])
    assert restore_numbers(window, [segment], score, "en") == ([segment], [])


# -- on real audio, with both engines ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def settings(model_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return s.model_copy(update={"asr": s.asr.model_copy(update={"model_cache_dir": model_cache_dir})})


@pytest.fixture(scope="module")
def caller_turn(settings: Settings) -> tuple[Window, Segment]:
    """The caller of zh_01 giving the number 一三九一零二三七七八六, as the recogniser writes it (right)."""
    audio = decode(SAMPLES / "zh_01_heating_stereo_ulaw.wav", settings.audio)
    transcript = load_transcriber(settings).transcribe(audio)
    [turn] = [s for s in transcript.segments if s.speaker == "caller" and "七七" in s.text]
    assert "一三九一零二三七七八六" in turn.text, turn.text
    caller = next(t for t in split_tracks(audio) if t.role == "caller").samples
    a, b = int(turn.start * SAMPLE_RATE), int(turn.end * SAMPLE_RATE)
    window = Window(caller[a:b], ((0.0, (b - a) / SAMPLE_RATE, turn.start, turn.end),), ("caller",))
    return window, Segment(turn.start, turn.end, "caller", turn.text)


@pytest.mark.parametrize("engine", ["faster-whisper", "openai-whisper"])
@pytest.mark.parametrize(("written", "mishearing"), [("七", "a digit merged"), ("七七七", "a digit too many")])
def test_the_number_is_mended_by_listening(engine: str, written: str, mishearing: str, settings: Settings,
                                           caller_turn: tuple[Window, Segment]) -> None:
    """The turn written as if the recogniser had merged the 七七, or heard a third 七."""
    window, heard_right = caller_turn
    misheard = replace(heard_right, text=heard_right.text.replace("七七", written, 1))
    transcriber = load_transcriber(settings.model_copy(
        update={"asr": settings.asr.model_copy(update={"engine": engine})}))
    [restored], record = restore_numbers(window, [misheard], transcriber.score_texts, "zh")
    assert "一三九一零二三七七八六" in restored.text, (mishearing, restored.text, record)
    assert record[0]["digits"] == "13910237786"
    heard = "一三九一零二三" + written + "八六"
    assert record[0]["candidates"] == len(restorations(heard))
