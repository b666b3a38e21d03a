"""Connectors by name, and the one the settings choose.

A connector module registers its class with ``@register("name")``; the class takes the
``DispatchSettings`` and raises ``PermanentDispatchError`` when they are not enough to send anything
(no URL, no secret). ``build_connector(settings)`` returns the configured one::

    connector = build_connector(settings)   # CALLINTAKE_DISPATCH__CONNECTOR=webhook
    connector.send(payload)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

from pipeline.dispatch.base import Connector
from pipeline.errors import PermanentDispatchError
from pipeline.settings import DispatchSettings, Settings

Factory = Callable[[DispatchSettings], Connector]
F = TypeVar("F", bound=Factory)

_FACTORIES: dict[str, Factory] = {}
#: modules that register the built-in connectors (imported on first use, not at import time)
_BUILTIN = ("pipeline.dispatch.webhook", "pipeline.dispatch.zammad")


def register(name: str) -> Callable[[F], F]:
    """Class decorator: make ``name`` (the value of ``CALLINTAKE_DISPATCH__CONNECTOR``) build this class."""

    def decorate(factory: F) -> F:
        _FACTORIES[name] = factory
        return factory

    return decorate


def connector_names() -> list[str]:
    """Every registered connector name, sorted."""
    _load_builtin()
    return sorted(_FACTORIES)


def build_connector(settings: Settings | DispatchSettings) -> Connector:
    """The connector the settings name, built; ``PermanentDispatchError`` when there is none to use."""
    dispatch = settings.dispatch if isinstance(settings, Settings) else settings
    _load_builtin()
    if dispatch.connector == "none":
        raise PermanentDispatchError(
            "no ticket system is configured: set CALLINTAKE_DISPATCH__CONNECTOR to webhook or zammad"
        )
    factory = _FACTORIES.get(dispatch.connector)
    if factory is None:
        raise PermanentDispatchError(
            f"unknown connector {dispatch.connector!r}; known: {', '.join(sorted(_FACTORIES))}"
        )
    return factory(dispatch)


def _load_builtin() -> None:
    for module in _BUILTIN:
        importlib.import_module(module)
