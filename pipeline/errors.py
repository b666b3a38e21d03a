"""The pipeline's error tree. Every failure a caller can see is one of these, with a readable message.

    PipelineError
    ├── ConfigError            settings or rule files that cannot be used
    ├── AudioError             the upload is not audio we can decode
    │   ├── EmptyAudio         zero bytes, or no samples after decoding
    │   ├── UnsupportedAudio   a container/codec/channel layout we refuse (e.g. > 2 channels)
    │   └── AudioTooLarge      over the configured size or duration limit
    ├── ModelError             the speech model cannot be provisioned or loaded
    ├── TranscriptionError     the engine failed on decodable audio
    ├── ExtractionError        the rules failed on a transcript
    ├── StorageError           the database or the audio store failed
    │   └── StorageUnavailable the database cannot be reached right now (retry later)
    ├── InvalidEdit            a reviewed value the ticket contract does not allow (also a ValueError)
    ├── DispatchError          a hand-off to the ticket system that did not happen
    │   ├── TransientDispatchError   timeout, connection refused or reset, 5xx, 429: try again later
    │   └── PermanentDispatchError   the receiver refused it, or nothing is configured
    ├── NotFound               no such call / ticket / key
    └── Conflict               the request contradicts stored state

Third-party exceptions are translated once, where they happen, with ``raise ... from exc``; the API
maps this tree to HTTP in one handler and the workers record ``stage`` + ``str(exc)`` on the call.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    #: machine-readable code, stable across versions (used in API error bodies and call error reasons)
    code = "pipeline_error"

    def __init__(self, message: str, *, stage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage

    def __str__(self) -> str:
        return self.message


class ConfigError(PipelineError):
    code = "config_error"


class AudioError(PipelineError):
    code = "bad_audio"


class EmptyAudio(AudioError):
    code = "empty_audio"


class UnsupportedAudio(AudioError):
    code = "unsupported_audio"


class AudioTooLarge(AudioError):
    code = "audio_too_large"


class ModelError(PipelineError):
    code = "model_error"


class TranscriptionError(PipelineError):
    code = "transcription_error"


class ExtractionError(PipelineError):
    code = "extraction_error"


class StorageError(PipelineError):
    code = "storage_error"


class StorageUnavailable(StorageError):
    code = "storage_unavailable"


class NotFound(PipelineError):
    code = "not_found"


class Conflict(PipelineError):
    code = "conflict"


class InvalidEdit(PipelineError, ValueError):
    """An edited value that the ticket contract does not allow (the API answers 422); the message starts
    with the field's name."""

    code = "invalid_edit"


class DispatchError(PipelineError):
    """A hand-off onward that did not happen; ``status_code`` when an HTTP answer came back."""

    code = "dispatch_error"

    def __init__(self, message: str, *, status_code: int | None = None, stage: str | None = "dispatch") -> None:
        super().__init__(message, stage=stage)
        self.status_code = status_code


class TransientDispatchError(DispatchError):
    """Worth trying again later (``retry_after`` when the receiver said how long to wait)."""

    code = "dispatch_unavailable"

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class PermanentDispatchError(DispatchError):
    """The same request will be refused again; a person has to change something first."""

    code = "dispatch_refused"
