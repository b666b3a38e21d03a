#!/usr/bin/env python3
"""Transcription speed: the pipeline against raw faster-whisper and raw openai-whisper, same files, same weights.

    python bench/asr.py [--files F ...] [--limit N] [--skip-openai]

Each contender runs in its own subprocess (so each one's peak RSS is its own), loads its model before
timing starts, then decodes and transcribes every file in turn; the figure is seconds of audio per
wall-clock second, model loading excluded, audio decoding included.

* ``pipeline``: ``load_transcriber(Settings())`` (the configured engine, the bundled weights unless
  ``CALLINTAKE_ASR__MODEL_PATH`` says otherwise), ``transcribe(decode(file))``: per-party tracks,
  VAD, packed windows, one language per call, guards.
* ``raw faster-whisper``: ``WhisperModel.transcribe`` on the mono mixdown, beam 5, no VAD, int8, as
  many threads as the pipeline's decoders have in all; language detected by the model; segments
  consumed in full.
* ``raw openai-whisper``: ``whisper``'s own ``model.transcribe`` on the mono mixdown, beam 5, float32 on
  the CPU, the converted checkpoint of the same weights, the same number of threads.

Prints a table (with the CPU seconds each used, which others' load disturbs less than wall time) and
the ratios pipeline / raw faster-whisper (target >= 1.3) and pipeline / raw openai-whisper (target >=
5), in wall time, and the machine's load average (the figures are only as quiet as the machine was).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONTENDERS = ("pipeline", "raw-faster-whisper", "raw-openai-whisper")
LABELS = {"pipeline": "pipeline", "raw-faster-whisper": "raw faster-whisper",
          "raw-openai-whisper": "raw openai-whisper"}
TARGETS = {"raw-faster-whisper": 1.3, "raw-openai-whisper": 5.0}


def default_files() -> list[Path]:
    return sorted(p for p in (ROOT / "audio_samples").iterdir() if p.suffix in {".wav", ".mp3"})


# -- inside a subprocess ---------------------------------------------------------------------------------
def _threads(settings) -> int:  # type: ignore[no-untyped-def]
    """The pipeline's threads in all (decoders x threads each): what each raw contender gets too."""
    from pipeline.asr.engines.faster_whisper import decoders_and_threads

    decoders, threads = decoders_and_threads(settings.asr)
    return decoders * threads


def run_contender(name: str, files: list[Path]) -> dict:
    """Load the contender's model, then time decoding + transcription of every file."""
    from pipeline.asr.audio import decode
    from pipeline.settings import Settings

    settings = Settings()
    started = time.monotonic()
    if name == "pipeline":
        from pipeline.asr import load_transcriber

        transcriber = load_transcriber(settings)

        def run(path: Path) -> tuple[float, str]:
            audio = decode(path, settings.audio)
            transcript = transcriber.transcribe(audio)
            return audio.duration_s, transcript.text

    elif name == "raw-faster-whisper":
        from faster_whisper import WhisperModel

        from pipeline.asr.model_store import resolve_model_path

        model_dir = resolve_model_path(settings.asr.model_path, settings.resolved_model_cache_dir)
        model = WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                             cpu_threads=_threads(settings), local_files_only=True)

        def run(path: Path) -> tuple[float, str]:
            audio = decode(path, settings.audio)
            segments, _ = model.transcribe(audio.mixdown(), beam_size=5, vad_filter=False)
            return audio.duration_s, "".join(s.text for s in segments)

    else:
        import torch

        from pipeline.asr.engines.openai_whisper import checkpoint_for, load_openai_checkpoint

        torch.set_num_threads(_threads(settings))
        model = load_openai_checkpoint(checkpoint_for(settings))

        def run(path: Path) -> tuple[float, str]:
            audio = decode(path, settings.audio)
            result = model.transcribe(audio.mixdown(), beam_size=5, fp16=False)
            return audio.duration_s, str(result["text"])

    load_s = time.monotonic() - started
    per_file = []
    wall = audio_s = 0.0
    before = resource.getrusage(resource.RUSAGE_SELF)
    for path in files:
        t0 = time.monotonic()
        seconds, text = run(path)
        elapsed = time.monotonic() - t0
        wall += elapsed
        audio_s += seconds
        per_file.append({"file": path.name, "audio_s": round(seconds, 2), "wall_s": round(elapsed, 2),
                         "text": text[:80]})
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"name": name, "load_s": round(load_s, 2), "audio_s": round(audio_s, 2), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "peak_rss_mb": round(after.ru_maxrss / 1024, 1), "threads": _threads(settings),
            "files": per_file}


# -- the driver ------------------------------------------------------------------------------------------
def spawn(name: str, files: list[Path]) -> dict:
    cmd = [sys.executable, __file__, "--contender", name, "--files", *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", nargs="+", type=Path, help="recordings (default: audio_samples/)")
    parser.add_argument("--limit", type=int, help="use only the first N files")
    parser.add_argument("--skip-openai", action="store_true", help="leave raw openai-whisper out (slow)")
    parser.add_argument("--per-file", action="store_true", help="print each file's figures too")
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    files = args.files or default_files()
    if args.limit:
        files = files[: args.limit]
    if args.contender:
        print(json.dumps(run_contender(args.contender, files), ensure_ascii=False))
        return 0

    load_before = os.getloadavg()
    names = [n for n in CONTENDERS if not (args.skip_openai and n == "raw-openai-whisper")]
    results = {name: spawn(name, files) for name in names}
    load_after = os.getloadavg()
    audio_s = results["pipeline"]["audio_s"]
    print(f"asr: {len(files)} files, {audio_s:.1f} s of audio, {results['pipeline']['threads']} threads; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)")
    print(f"{'':20s} {'audio s/wall s':>14s} {'wall s':>8s} {'CPU s':>7s} {'load s':>7s} {'peak RSS MB':>12s}")
    for name, r in results.items():
        speed = r["audio_s"] / r["wall_s"] if r["wall_s"] else float("inf")
        print(f"{LABELS[name]:20s} {speed:14.2f} {r['wall_s']:8.1f} {r['cpu_s']:7.1f} {r['load_s']:7.1f} "
              f"{r['peak_rss_mb']:12.0f}")
        if args.per_file:
            for f in r["files"]:
                print(f"    {f['file']:36s} {f['audio_s']:6.1f} s  {f['wall_s']:6.1f} s  {f['text']}")
    pipeline_speed = results["pipeline"]["audio_s"] / results["pipeline"]["wall_s"]
    for name, target in TARGETS.items():
        if name in results:
            ratio = pipeline_speed / (results[name]["audio_s"] / results[name]["wall_s"])
            verdict = "met" if ratio >= target else "NOT met"
            print(f"pipeline / {LABELS[name]}: {ratio:.2f}x (target >= {target:g}x: {verdict})")
    print(f"pipeline peak RSS: {results['pipeline']['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
