"""One settings object for the whole product, read from the environment (prefix ``CALLINTAKE_``).

Nested groups use ``__`` in variable names: ``CALLINTAKE_ASR__ENGINE=openai-whisper``,
``CALLINTAKE_AUDIO__CALLER_CHANNEL=0``. Settings are built once by the entry point (CLI, API app
factory, worker) and passed down explicitly; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AsrSettings(BaseModel):
    """How speech becomes text."""

    engine: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    """Transcription engine. Both run on the same bundled weights."""

    model_path: Path | None = None
    """A CTranslate2 Whisper directory (faster-whisper) or an openai-whisper ``.pt`` checkpoint.
    Empty means the bundled multilingual ``base`` model, assembled on first use in ``model_cache_dir``."""

    model_cache_dir: Path | None = None
    """Where the bundled model is assembled. Empty means ``<data_dir>/models``."""

    compute_type: str = "int8"
    """CTranslate2 compute type on CPU (``int8``, ``int8_float32``, ``float32``)."""

    cpu_threads: int = 0
    """Threads for one decoder; 0 shares the machine's cores among the decoders (``num_workers``)."""

    num_workers: int = 0
    """Speech windows decoded at the same time, each by its own decoder (faster-whisper); 0 means one
    when ``cpu_threads`` is set, else two on a machine with two cores or more."""

    beam_size: int = 5
    """Beam width for decoding."""

    quick_beam_size: int = 0
    """0: every window is decoded with ``beam_size``. A smaller width (2) makes each window's first
    decode narrower, and only a window whose decode is unsure, repetitive or holds a number said digit by
    digit is decoded again with ``beam_size``: about twice the throughput, at some accuracy (on the
    evaluation calls, Mandarin CER 0.100 instead of 0.089)."""

    languages: list[str] = Field(default_factory=lambda: ["zh", "en"])
    """Languages a call may be in; detection is restricted to these, decided over the whole call. The
    first is the hotline's own: a call with too little speech to tell is taken to be in it."""

    vad: bool = True
    """Skip non-speech with voice activity detection before decoding."""

    domain_prompt: bool = True
    """Give the decoder an initial prompt with hotline and Beijing place vocabulary (Mandarin)."""

    restore_numbers: bool = True
    """Mend a phone number written a digit or more short ("一一" written "一") or one digit too long,
    choosing among the valid numbers by scoring each against the caller's audio (``pipeline.asr.numbers_heard``)."""

    vocabulary: bool = True
    """Respell sound-alike places and hotline terms in Mandarin transcripts (``pipeline.asr.vocabulary``)."""


class OpsSettings(BaseModel):
    """Running the queue across processes and hosts: leases, reconcile, shutdown, reprocessing, logs."""

    lease_ttl_s: float = 30.0
    """How long a job's claim on a call outlives a worker that stopped renewing it (killed, host lost).
    A running job renews its claim every third of this; a call whose claim expired is not running."""

    reconcile_every_s: float = 300.0
    """Each long-running worker tries this often to run ``reconcile`` (one at a time across hosts, under a
    Redis lock). 0 turns the periodic run off (``callintake reconcile`` still works)."""

    reconcile_grace_s: float = 60.0
    """Calls whose status changed more recently than this are left alone by ``reconcile`` (an upload
    may be between its database commit and its enqueue)."""

    max_attempts: int = 5
    """A call lost this many times (its worker died each time) is marked ``failed`` instead of requeued."""

    shutdown_grace_s: float = 0.0
    """After SIGTERM, how long the job in progress may go on before it is interrupted and its call
    requeued for another worker. 0 lets it finish however long it takes."""

    reprocess_batch_size: int = 500
    """Calls per archive job when re-extracting stored transcripts (one transaction each)."""

    retranscribe_batch_size: int = 2
    """Calls per archive job when transcribing again (each runs the speech model)."""

    report_dir: Path | None = None
    """Where reprocess diff reports are written. Empty means ``<data_dir>/reports``."""

    log_format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object per log line (with ``call_id`` when the line is about a call)."""

    @field_validator("lease_ttl_s")
    @classmethod
    def _positive_lease(cls, value: float) -> float:
        if value < 1.0:
            raise ValueError("lease_ttl_s must be at least 1 second")
        return value


class AudioSettings(BaseModel):
    """What recordings are accepted and how their channels are read."""

    max_upload_mb: float = 200.0
    """Largest upload accepted, in MiB."""

    max_duration_s: float = 4 * 3600.0
    """Longest recording accepted, in seconds."""

    agent_channel: int = 0
    """In a stereo recording, the channel that carries the hotline agent."""

    caller_channel: int = 1
    """In a stereo recording, the channel that carries the citizen."""

    @field_validator("agent_channel", "caller_channel")
    @classmethod
    def _channel_index(cls, value: int) -> int:
        if value not in (0, 1):
            raise ValueError("channel must be 0 or 1")
        return value


class DispatchSettings(BaseModel):
    """Where approved tickets go onward, and how hard to try."""

    connector: Literal["none", "webhook", "zammad"] = "none"
    """``webhook`` posts signed JSON to ``url``; ``zammad`` creates tickets through Zammad's REST API at
    ``url``; ``none`` keeps approved tickets here (a dispatch attempt fails with a readable reason)."""

    url: str = ""
    """The webhook's URL, or Zammad's base URL (``https://helpdesk.example.org``)."""

    secret: SecretStr = SecretStr("")
    """Webhook: the shared secret the ``X-Callintake-Signature`` HMAC-SHA256 is made with."""

    token: SecretStr = SecretStr("")
    """Zammad: an access token (``Authorization: Token token=…``) with ``ticket.agent`` permission."""

    timeout_s: float = 10.0
    """Seconds to wait for the connection and for each read of the answer."""

    retry_intervals: list[int] = Field(default_factory=lambda: [10, 60, 300, 900, 3600])
    """Seconds before each retry after a transient failure (timeout, connection refused, 5xx, 429);
    one retry per entry, then the dispatch is marked failed. A ``Retry-After`` longer than the
    interval is honoured, up to ``max_retry_after_s``."""

    max_retry_after_s: int = 3600
    """The longest ``Retry-After`` that is honoured; longer ones are cut to this."""

    audio_base_url: str = ""
    """Public prefix for links to recordings (``https://intake.example.org/audio``); the payload's
    ``audio.url`` is this plus the stored path. Empty: only the path relative to the data directory."""

    zammad_group: str = "Users"
    """Zammad: the group new tickets go to."""

    zammad_customer: str = ""
    """Zammad: the customer of new tickets, an id or ``guess:<email>``; empty leaves it to Zammad."""

    zammad_max_attachment_mb: float = 20.0
    """Zammad: recordings larger than this are linked in the article instead of attached."""

    @field_validator("retry_intervals")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        if any(v < 0 for v in value):
            raise ValueError("retry intervals must be 0 or more seconds")
        return value


class Settings(BaseSettings):
    """Everything configurable, with defaults that run on one machine with no services."""

    model_config = SettingsConfigDict(
        env_prefix="CALLINTAKE_", env_nested_delimiter="__", env_file=None, extra="ignore"
    )

    data_dir: Path = Path("data")
    """Root of the audio store, the SQLite file and the model cache. Share it between hosts to scale out."""

    database_url: str = ""
    """SQLAlchemy URL. Empty means a SQLite file ``<data_dir>/callintake.db``; a PostgreSQL URL
    (``postgresql+psycopg://user@host/db``) is the multi-host choice."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis for the job queue (API and workers)."""

    queue_mode: Literal["rq", "inline"] = "rq"
    """``rq`` enqueues uploads for workers; ``inline`` processes them inside the API process (demo only)."""

    timezone: str = "Asia/Shanghai"
    """Time zone of the hotline, for received times and due dates shown to people."""

    asr: AsrSettings = Field(default_factory=AsrSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite:///{(self.data_dir / 'callintake.db').resolve()}"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def resolved_model_cache_dir(self) -> Path:
        return self.asr.model_cache_dir or (self.data_dir / "models")

    @property
    def resolved_report_dir(self) -> Path:
        return self.ops.report_dir or (self.data_dir / "reports")
