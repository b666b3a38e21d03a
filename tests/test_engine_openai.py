"""The openai-whisper engine on the converted bundled weights: it agrees with the default engine, through
``load_transcriber`` and through the ``callintake`` command, and loads a checkpoint a user brings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import service_env
from rapidfuzz.distance import Levenshtein

from pipeline.asr import load_transcriber
from pipeline.asr.audio import decode
from pipeline.asr.engines.faster_whisper import FasterWhisperTranscriber
from pipeline.asr.engines.openai_whisper import (
    BUNDLED_CHECKPOINT,
    OpenAIWhisperTranscriber,
    checkpoint_for,
    converted_checkpoint,
    whole_character_tokens,
)
from pipeline.errors import ModelError
from pipeline.settings import Settings
from pipeline.text.chinese import to_simplified

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


def _with_asr(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"asr": settings.asr.model_copy(update=changes)})


@pytest.fixture(scope="module")
def openai_engine(settings: Settings) -> OpenAIWhisperTranscriber:
    engine = load_transcriber(_with_asr(settings, engine="openai-whisper"))
    assert isinstance(engine, OpenAIWhisperTranscriber)
    return engine


@pytest.fixture(scope="module")
def faster_engine(settings: Settings) -> FasterWhisperTranscriber:
    engine = load_transcriber(_with_asr(settings, engine="faster-whisper"))
    assert isinstance(engine, FasterWhisperTranscriber)
    return engine


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
    from pipeline.asr.model_store import bundled_model_dir

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


# -- through the command ------------------------------------------------------------------------------------
def _callintake(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def cli_env(settings: Settings, model_cache_dir: Path) -> dict[str, str]:
    return {**service_env(settings, model_cache_dir), "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert"], "needs SRC"),
        (["convert", "bundled"], "needs SRC"),
        (["convert", "bundled", "model.bin"], "must end in .pt"),
        (["convert", "no-such-dir", "x.pt"], "not a directory"),
        (["path", "extra"], "takes no arguments"),
    ],
)
def test_models_command_refuses_what_it_cannot_do(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    done = _callintake("models", *args, env=cli_env, cwd=tmp_path)
    assert done.returncode == 2, done
    assert message in done.stderr
    assert not list(tmp_path.glob("*.pt"))


@pytest.mark.model
def test_both_engines_through_the_command_and_a_users_checkpoint(cli_env: dict[str, str], tmp_path: Path) -> None:
    """``process --engine`` picks the engine; a checkpoint made by ``models convert`` is loaded from
    CALLINTAKE_ASR__MODEL_PATH like any openai-whisper ``.pt`` a user already has, with the same result."""
    import whisper

    converted = tmp_path / "my-base.pt"
    done = _callintake("models", "convert", "bundled", str(converted), env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == converted
    assert whisper.load_model(str(converted), device="cpu").dims.n_text_layer == 6  # a standard checkpoint

    sample = str(SAMPLES / "zh_01_heating_stereo_ulaw.wav")
    texts = {}
    for name, args, extra in [
        ("faster", ["--engine", "faster-whisper"], {}),
        ("openai", ["--engine", "openai-whisper"], {}),
        ("user", [], {"CALLINTAKE_ASR__ENGINE": "openai-whisper", "CALLINTAKE_ASR__MODEL_PATH": str(converted)}),
    ]:
        done = _callintake("process", "--json", *args, sample, env={**cli_env, **extra}, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert "error" not in result, result
        assert result["language"] == "zh"
        assert {s["speaker"] for s in result["transcript"]["segments"]} == {"agent", "caller"}
        texts[name] = result["transcript"]["text"]
    assert texts["user"] == texts["openai"]  # the same weights, wherever the checkpoint came from
    assert cer(texts["openai"], texts["faster"]) < 0.15, texts

    # the checkpoint given to the default engine is a clear error, not a crash
    done = _callintake("process", "--json", sample, env={**cli_env, "CALLINTAKE_ASR__MODEL_PATH": str(converted)},
                       cwd=tmp_path)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "openai-whisper checkpoint" in result["error"]
    assert os.path.getsize(converted) > 100_000_000
