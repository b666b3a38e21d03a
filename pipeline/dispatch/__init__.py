"""Dispatch: approved tickets onward to the ticket system, each version once.

``base`` holds the payload, the ``Connector`` protocol and the error tree; ``registry`` builds the
connector the settings name (``webhook``, ``zammad``); ``http`` is the one HTTP request with the retry
rules; ``service.dispatch_ticket`` is one recorded attempt. Queueing and retry timing belong to
``workers.dispatch_jobs``.
"""

from pipeline.dispatch.base import AudioRef, Connector, DispatchPayload, SendResult, make_reference
from pipeline.errors import DispatchError, PermanentDispatchError, TransientDispatchError

__all__ = [
    "AudioRef", "Connector", "DispatchError", "DispatchPayload", "PermanentDispatchError", "SendResult",
    "TransientDispatchError", "make_reference",
]
