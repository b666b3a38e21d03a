"""Transcripts as the pipeline passes them around: frozen, engine-independent, JSON round-trippable.

A transcript is the whole call in time order. ``text`` joins the segments' texts with single spaces,
so a character span in ``text`` can always be mapped back to a segment, its speaker and its seconds
(``locate``). Speakers are ``agent``, ``caller`` (stereo calls with known channel roles) or ``mixed``
(mono calls, both parties on one channel).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SPEAKERS = ("agent", "caller", "mixed")


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    speaker: str
    text: str
    confidence: float = 1.0
    """Mean token probability of the segment (exp of Whisper's avg_logprob), 0..1."""
    words: tuple[Word, ...] = ()

    def to_dict(self, *, words: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "speaker": self.speaker,
            "text": self.text,
            "confidence": round(self.confidence, 4),
        }
        if words and self.words:
            out["words"] = [
                {"start": round(w.start, 3), "end": round(w.end, 3), "text": w.text,
                 "probability": round(w.probability, 4)}
                for w in self.words
            ]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        return cls(
            start=float(data.get("start") or 0.0),
            end=float(data.get("end") or 0.0),
            speaker=str(data.get("speaker") or "mixed"),
            text=str(data.get("text") or ""),
            confidence=float(data.get("confidence", 1.0)),
            words=tuple(
                Word(float(w["start"]), float(w["end"]), str(w["text"]), float(w.get("probability", 1.0)))
                for w in data.get("words") or ()
            ),
        )


@dataclass(frozen=True)
class Transcript:
    language: str
    segments: tuple[Segment, ...]
    duration: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)
    """How the transcript was made: engine, model, compute type, beam, VAD, prompt, language decision."""

    @classmethod
    def from_segments(
        cls, language: str, segments: Iterable[Segment], *, duration: float = 0.0,
        options: Mapping[str, Any] | None = None,
    ) -> Transcript:
        ordered = tuple(sorted((s for s in segments if s.text.strip()), key=lambda s: (s.start, s.end)))
        return cls(language=language, segments=ordered, duration=duration, options=dict(options or {}))

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    def segment_offsets(self) -> list[int]:
        """Start offset in ``text`` of each segment."""
        offsets, pos = [], 0
        for seg in self.segments:
            offsets.append(pos)
            pos += len(seg.text) + 1
        return offsets

    def locate(self, start_char: int, end_char: int) -> tuple[float | None, float | None, str | None]:
        """Audio seconds and speaker of a character span of ``text`` (interpolated inside a segment)."""
        if not self.segments:
            return None, None, None
        offsets = self.segment_offsets()
        first = max(bisect.bisect_right(offsets, start_char) - 1, 0)
        last = max(bisect.bisect_right(offsets, max(end_char - 1, start_char)) - 1, 0)

        def at(index: int, char: int) -> float:
            seg = self.segments[index]
            n = max(len(seg.text), 1)
            frac = min(max((char - offsets[index]) / n, 0.0), 1.0)
            return seg.start + frac * (seg.end - seg.start)

        return round(at(first, start_char), 3), round(at(last, end_char), 3), self.segments[first].speaker

    def to_dict(self, *, words: bool = True) -> dict[str, Any]:
        return {
            "language": self.language,
            "duration": round(self.duration, 3),
            "text": self.text,
            "segments": [s.to_dict(words=words) for s in self.segments],
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transcript:
        return cls(
            language=str(data.get("language") or ""),
            segments=tuple(Segment.from_dict(s) for s in data.get("segments") or ()),
            duration=float(data.get("duration") or 0.0),
            options=dict(data.get("options") or {}),
        )
