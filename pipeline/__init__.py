"""callintake's domain: audio, transcription, text normalisation, ticket extraction and storage.

Nothing in this package imports FastAPI or RQ; it runs as a library and from the CLI without Redis.
"""

__version__ = "0.1.0"
