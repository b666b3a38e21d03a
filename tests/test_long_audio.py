"""Long recordings: transcribed block by block, in memory that does not grow with their length.

A two-hour stereo call decoded whole would be 2 x 57 M samples of float32 (875 MiB, and as much again
while ffmpeg's bytes are converted). These tests make such a file (eight two-party sample calls, each
followed by a quarter of an hour of line hiss), run the real ``callintake process --json`` on it and
on one call, and measure the command's peak RSS (on the reference machine about 910 MiB for the two
hours and 640 MiB for the one call, most of it the model and its two decoders). They also check that
cutting a call into blocks changes nothing a listener would notice, and that a short call streamed
gives exactly what it gives decoded whole.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import service_env
from rapidfuzz.distance import Levenshtein

from pipeline.asr import load_transcriber
from pipeline.asr.audio import DecodedAudio, StreamedAudio, decode
from pipeline.asr.engines.faster_whisper import FasterWhisperTranscriber
from pipeline.settings import Settings

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"
CALL = SAMPLES / "zh_01_heating_stereo_ulaw.wav"
#: the Mandarin two-party calls, one after another in the long recording
STEREO_CALLS = [CALL, SAMPLES / "zh_04_property_stereo_alaw.wav", SAMPLES / "zh_06_wages_stereo_ulaw.wav",
                SAMPLES / "zh_08_refund_stereo_mp3.mp3"]
#: what follows each copy of the call in the long file
HISS_S = 870
COPIES = 8
#: the command may need this much more memory for two hours than for a half-minute call; decoded whole,
#: the audio alone would take 1,750 MiB (875 MiB of float32 and as much again in ffmpeg's bytes)
GROWTH_LIMIT_MB = 400
PEAK_LIMIT_MB = 1200


@pytest.fixture(scope="module")
def settings(model_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return s.model_copy(update={"asr": s.asr.model_copy(update={"model_cache_dir": model_cache_dir})})


@pytest.fixture(scope="module")
def transcriber(settings: Settings) -> FasterWhisperTranscriber:
    engine = load_transcriber(settings)
    assert isinstance(engine, FasterWhisperTranscriber)
    return engine


def _sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)


def _cer(a: str, b: str) -> float:
    """Character error rate between two texts, punctuation and spaces left out."""
    a, b = re.sub(r"[\W_]+", "", a), re.sub(r"[\W_]+", "", b)
    return Levenshtein.distance(a, b) / max(len(a), len(b), 1)


def test_a_short_call_streamed_gives_what_it_gives_decoded_whole(
    transcriber: FasterWhisperTranscriber, settings: Settings
) -> None:
    whole = decode(CALL, settings.audio)
    streamed = decode(CALL, settings.audio, stream_after_s=1.0)
    assert isinstance(whole, DecodedAudio) and isinstance(streamed, StreamedAudio)
    a, b = transcriber.transcribe(whole), transcriber.transcribe(streamed)
    assert a.options["blocks"] == b.options["blocks"] == 1
    assert [(s.start, s.end, s.speaker, s.text) for s in a.segments] == \
        [(s.start, s.end, s.speaker, s.text) for s in b.segments]
    assert a.language == b.language == "zh"
    assert abs(a.duration - b.duration) < 1e-6


def test_turns_across_block_ends_are_not_cut(transcriber: FasterWhisperTranscriber, settings: Settings) -> None:
    """Blocks of 10 s cut through two of the caller's turns (9.1-14.1 s, 18.0-22.2 s); what a block
    leaves unfinished is carried into the next, so the turns, their times and their words come out as
    from the whole call (a block's windows hold less context, so a word may still differ)."""
    audio = decode(CALL, settings.audio)
    whole = transcriber.transcribe(audio)
    blocked = transcriber.transcribe(audio, block_s=10.0)
    assert blocked.options["blocks"] == 3
    assert len(blocked.segments) == len(whole.segments)
    for ours, theirs in zip(blocked.segments, whole.segments, strict=True):
        assert ours.speaker == theirs.speaker
        assert abs(ours.start - theirs.start) < 0.3 and abs(ours.end - theirs.end) < 0.3, (ours, theirs)
    assert _cer(blocked.text, whole.text) < 0.1, (blocked.text, whole.text)


def _peak_rss_mb(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run ``cmd`` from a fresh interpreter whose only child it is, and return the child's peak RSS."""
    probe = ("import resource, subprocess, sys\n"
             "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)\n"
             "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + '\\n')\n"
             "sys.stdout.buffer.write(done.stdout)\n"
             "sys.exit(done.returncode)\n")
    done = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stderr.strip().splitlines()[-1]) / 1024, done.stdout


def test_a_two_hour_recording_in_bounded_memory(
    transcriber: FasterWhisperTranscriber, settings: Settings, model_cache_dir: Path, tmp_path: Path
) -> None:
    hiss = tmp_path / "hiss.wav"
    _sox("-n", "-r", "8000", "-c", "2", "-e", "u-law", str(hiss), "synth", str(HISS_S), "whitenoise", "vol", "0.002")
    pieces, offsets, expected = [], [], []
    offset = 0.0
    for k in range(COPIES):
        call = STEREO_CALLS[k % len(STEREO_CALLS)]
        piece = tmp_path / f"piece{k}.wav"
        _sox(str(call), "-r", "8000", "-e", "u-law", str(piece.with_suffix(".call.wav")))
        _sox(str(piece.with_suffix(".call.wav")), str(hiss), str(piece))
        pieces.append(str(piece))
        offsets.append(offset)
        offset += float(subprocess.run(["soxi", "-D", str(piece)], capture_output=True, text=True,
                                       check=True).stdout)
        if k < len(STEREO_CALLS):
            expected.append(transcriber.transcribe(decode(call, settings.audio)))
    long = tmp_path / "two-hours.wav"
    _sox(*pieces, str(long))
    assert offset > 7000

    env = {**service_env(settings, model_cache_dir), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pipeline.cli", "process", "--json"]
    short_peak, _ = _peak_rss_mb([*command, str(STEREO_CALLS[0])], env, tmp_path)
    long_peak, out = _peak_rss_mb([*command, str(long)], env, tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert "error" not in result, result
    assert result["language"] == "zh"
    assert abs(result["duration_s"] - offset) < 1.0

    # every call is there, at its own time in the recording, both parties, about as heard alone
    segments = result["transcript"]["segments"]
    for k, start in enumerate(offsets):
        alone = expected[k % len(STEREO_CALLS)]
        mine = [s for s in segments if start <= s["start"] < start + alone.duration + HISS_S]
        assert mine, f"call {k} is missing"
        assert {s["speaker"] for s in mine} == {"agent", "caller"}, (k, mine)
        assert abs(mine[0]["start"] - start - alone.segments[0].start) < 0.5, (k, mine[0])
        assert max(s["end"] for s in mine) < start + alone.duration + 1, (k, mine)  # nothing heard in the hiss
        text = "".join(s["text"] for s in mine)
        assert _cer(text, alone.text) < 0.25, (k, text, alone.text)

    decoded_signal_mb = offset * 16_000 * 2 * 4 / 2**20  # MiB, like ru_maxrss / 1024
    assert decoded_signal_mb > 850
    assert long_peak < PEAK_LIMIT_MB, (long_peak, short_peak)
    assert long_peak - short_peak < GROWTH_LIMIT_MB, (long_peak, short_peak)
