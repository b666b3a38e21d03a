"""Transcription on the real bundled model: roles from stereo channels, language, Simplified output, guards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.asr import load_transcriber
from pipeline.asr.audio import DecodedAudio, decode
from pipeline.asr.cleanup import is_hallucination
from pipeline.asr.decoding import says_a_number
from pipeline.asr.engines.faster_whisper import decoders_and_threads
from pipeline.asr.tracks import split_tracks
from pipeline.settings import AsrSettings, Settings
from pipeline.text.chinese import to_simplified

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"


@pytest.fixture(scope="module")
def settings(model_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return s.model_copy(update={"asr": s.asr.model_copy(update={"model_cache_dir": model_cache_dir})})


@pytest.fixture(scope="module")
def transcriber(settings: Settings):  # type: ignore[no-untyped-def]
    return load_transcriber(settings)


def _first(pattern: str) -> Path:
    found = sorted(p for p in SAMPLES.glob(pattern) if p.suffix in {".wav", ".mp3"})
    assert found, f"no sample matches {pattern}"
    return found[0]


def test_stereo_call_is_a_dialogue_of_agent_and_caller(transcriber, settings: Settings) -> None:
    audio = decode(_first("zh_*stereo*.wav"), settings.audio)
    transcript = transcriber.transcribe(audio)
    assert transcript.language == "zh"
    speakers = [s.speaker for s in transcript.segments]
    assert set(speakers) == {"agent", "caller"}
    assert speakers[0] == "agent"  # the agent greets first
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    assert to_simplified(transcript.text) == transcript.text
    assert "热线" in transcript.text or "服务" in transcript.text
    assert all(seg.words for seg in transcript.segments)
    assert transcript.options["engine"] == "faster-whisper"
    assert transcript.options["tracks"] == ["agent", "caller"]


def test_english_call_is_english(transcriber, settings: Settings) -> None:
    transcript = transcriber.transcribe(decode(_first("en_*"), settings.audio))
    assert transcript.language == "en"
    assert transcript.options["language_scores"]["en"] > 0.5
    assert "hotline" in transcript.text.lower()


def test_mono_call_is_one_mixed_speaker(transcriber, settings: Settings) -> None:
    transcript = transcriber.transcribe(decode(_first("zh_*mono*"), settings.audio))
    assert {s.speaker for s in transcript.segments} == {"mixed"}


def test_mono_stored_as_stereo_is_one_track(settings: Settings) -> None:
    mono = decode(_first("zh_*mono*"), settings.audio)
    twin = DecodedAudio(channels=(mono.channels[0], mono.channels[0].copy()), roles=("agent", "caller"),
                        info=mono.info)
    assert [t.role for t in split_tracks(twin)] == ["mixed"]
    one_sided = DecodedAudio(channels=(mono.channels[0], np.zeros_like(mono.channels[0])),
                             roles=("agent", "caller"), info=mono.info)
    assert [t.role for t in split_tracks(one_sided)] == ["mixed"]


@pytest.mark.parametrize("synth", [
    ["synth", "20", "whitenoise", "vol", "0.02"],                     # line hiss, no speech
    ["synth", "20", "pluck", "C4", "pluck", "E4", "vol", "0.3"],       # hold music
])
def test_no_speech_gives_no_words(transcriber, settings: Settings, tmp_path: Path, synth: list[str]) -> None:
    path = tmp_path / "nospeech.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path), *synth], check=True)
    transcript = transcriber.transcribe(decode(path, settings.audio))
    assert not any(is_hallucination(s.text) for s in transcript.segments)
    assert len(transcript.text) < 10, transcript.text


@pytest.mark.parametrize(("asr", "expected"), [
    ({}, (2, 1)),                                  # two decoders share the two cores
    ({"cpu_threads": 1}, (1, 1)),                  # one worker process per core: one decoder each
    ({"num_workers": 1}, (1, 2)),
    ({"num_workers": 3, "cpu_threads": 2}, (3, 2)),
])
def test_decoders_share_the_cores(asr: dict[str, int], expected: tuple[int, int],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)  # the reference machine, whatever runs the test
    assert decoders_and_threads(AsrSettings(**asr)) == expected


@pytest.mark.parametrize(("text", "number"), [
    ("我姓刘，电话一三九，一零二三，七七八六。", True),
    ("手机号是186、122045 39", True),
    ("My number is 555-219-4481.", True),
    ("您好，12345市民服务热线，请问有什么可以帮您？", False),  # the hotline's own number is short
    ("您好，要爱三四五十名服务热线", False),
    ("一共三千五百元", False),
])
def test_a_number_said_digit_by_digit_is_found(text: str, number: bool) -> None:
    """With a quick beam configured, such a window is decoded again with the full beam."""
    assert says_a_number(text) is number
