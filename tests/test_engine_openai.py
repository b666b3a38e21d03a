"""The openai-whisper engine on the converted bundled weights: it agrees with the default engine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein

from pipeline.audio import decode
from pipeline.engine_openai import (
    BUNDLED_CHECKPOINT,
    OpenAIWhisperTranscriber,
    checkpoint_for,
    converted_checkpoint,
    whole_character_tokens,
)
from pipeline.errors import ModelError
from pipeline.settings import Settings
from pipeline.textclean import to_simplified
from pipeline.transcribe import FasterWhisperTranscriber

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"


def normalised(text: str) -> str:
    """Lower case, Simplified, letters and digits only: what both engines should agree on."""
    return re.sub(r"[\W_]+", "", to_simplified(text).lower())


def cer(a: str, b: str) -> float:
    a, b = normalised(a), normalised(b)
    return Levenshtein.distance(a, b) / max(len(a), len(b), 1)


def test_cer_measures_what_it_should() -> None:
    assert cer("您好，请问有什么可以帮您？", "您好请问有什么可以帮您") == 0.0
    assert cer("City Services hotline.", "city services hotline") == 0.0
    assert cer("我家暖气不热", "我家暖氣不熱") == 0.0
    assert cer("我家暖气不热", "我家暖水不热") == pytest.approx(1 / 6)


def test_half_written_characters_are_dropped_with_the_real_tokenizer() -> None:
    from whisper.tokenizer import get_tokenizer

    tokenizer = get_tokenizer(True, num_languages=99, language="zh", task="transcribe")
    encoding = tokenizer.encoding
    before, after = tokenizer.encode("我姓刘"), tokenizer.encode("电话多少")
    lead = encoding.encode_single_token("话".encode()[:1])  # the first byte of a character, alone
    tokens = whole_character_tokens([*before, lead, *after], encoding.decode_single_token_bytes)
    assert tokenizer.decode(tokens) == "我姓刘电话多少"
    intact = tokenizer.encode("您好，请问")
    assert whole_character_tokens(intact, encoding.decode_single_token_bytes) == intact
    cut = tokenizer.encode("刘")
    unfinished = cut[:-1] if len(cut) > 1 else [lead]
    assert whole_character_tokens(unfinished, encoding.decode_single_token_bytes) == []


def test_a_missing_checkpoint_is_a_model_error(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    s = s.model_copy(update={"asr": s.asr.model_copy(update={"model_path": tmp_path / "nowhere.pt"})})
    with pytest.raises(ModelError, match="does not exist"):
        checkpoint_for(s)


# -- on the real model ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def settings(model_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return s.model_copy(update={"asr": s.asr.model_copy(update={"model_cache_dir": model_cache_dir})})


@pytest.fixture(scope="module")
def openai_engine(settings: Settings) -> OpenAIWhisperTranscriber:
    return OpenAIWhisperTranscriber(settings)


@pytest.fixture(scope="module")
def faster_engine(settings: Settings) -> FasterWhisperTranscriber:
    return FasterWhisperTranscriber(settings)


@pytest.mark.model
@pytest.mark.parametrize(
    ("sample", "language", "speakers", "phrase"),
    [
        ("zh_01_heating_stereo_ulaw.wav", "zh", {"agent", "caller"}, "暖气"),
        ("en_02_school_mono_mp3.mp3", "en", {"mixed"}, "school"),
    ],
)
def test_both_engines_transcribe_a_call_alike(
    openai_engine: OpenAIWhisperTranscriber, faster_engine: FasterWhisperTranscriber, settings: Settings,
    sample: str, language: str, speakers: set[str], phrase: str,
) -> None:
    audio = decode(SAMPLES / sample, settings.audio)
    ours = openai_engine.transcribe(audio)
    reference = faster_engine.transcribe(audio)
    assert ours.options["engine"] == "openai-whisper"
    assert ours.options["model"].endswith(BUNDLED_CHECKPOINT)
    assert ours.language == reference.language == language
    assert ours.options["language_scores"][language] > 0.9
    assert {s.speaker for s in ours.segments} == {s.speaker for s in reference.segments} == speakers
    assert phrase in ours.text.lower()
    assert cer(ours.text, reference.text) < 0.15, (ours.text, reference.text)
    for seg in ours.segments:
        assert seg.words, seg
        assert all(seg.start <= w.start <= w.end <= seg.end for w in seg.words), seg
    if language == "zh":
        assert to_simplified(ours.text) == ours.text


@pytest.mark.model
def test_a_tone_with_no_speech_gives_no_text(openai_engine: OpenAIWhisperTranscriber, settings: Settings,
                                             tmp_path: Path) -> None:
    """Music-like input is where Whisper invents subtitles credits; VAD must keep it from the decoder."""
    path = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path), "synth", "8",
                    "sine", "300-900", "vol", "0.3"], check=True, capture_output=True)
    audio = decode(path, settings.audio)
    assert openai_engine.speech_spans(audio.channels[0]) == []
    transcript = openai_engine.transcribe(audio)
    assert transcript.segments == ()
    assert transcript.language in settings.asr.languages


@pytest.mark.model
def test_a_user_checkpoint_is_loaded_as_is(
    settings: Settings, openai_engine: OpenAIWhisperTranscriber
) -> None:
    converted = Path(openai_engine.options["model"])
    with_path = settings.model_copy(update={"asr": settings.asr.model_copy(update={"model_path": converted})})
    assert checkpoint_for(with_path) == converted
    engine = OpenAIWhisperTranscriber(with_path)
    assert engine.options["model"] == str(converted)


@pytest.mark.model
def test_conversion_happens_once_and_again_when_the_source_changes(
    settings: Settings, tmp_path: Path, openai_engine: OpenAIWhisperTranscriber
) -> None:
    from pipeline.models import bundled_model_dir

    bundled = bundled_model_dir(settings.resolved_model_cache_dir)
    first = converted_checkpoint(bundled, settings.resolved_model_cache_dir)
    stamp = first.stat().st_mtime_ns
    assert converted_checkpoint(bundled, settings.resolved_model_cache_dir) == first
    assert first.stat().st_mtime_ns == stamp  # found ready, not written again

    other = tmp_path / "my-model"
    other.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (other / name).write_bytes((bundled / name).read_bytes())
    made = converted_checkpoint(other, tmp_path / "cache")
    assert made.name.startswith("openai-whisper-my-model-") and made.suffix == ".pt"
    stamp = made.stat().st_mtime_ns
    (other / "model.bin").write_bytes((bundled / "model.bin").read_bytes())  # an updated source
    assert converted_checkpoint(other, tmp_path / "cache") == made
    assert made.stat().st_mtime_ns != stamp
