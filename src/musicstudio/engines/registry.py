"""Engine discovery through the ``musicstudio.engines`` entry-point group.

Each entry point names a factory (usually the engine class) called with the
``Settings``; it returns an object satisfying ``musicstudio.engines.base.Engine``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import cast

from musicstudio.config import Settings
from musicstudio.engines.base import Engine

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "musicstudio.engines"

EngineFactory = Callable[[Settings], Engine]


class EngineRegistry:
    """The engines available to this process, by key."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        self._engines = dict(engines)

    def get(self, key: str) -> Engine | None:
        return self._engines.get(key)

    def keys(self) -> list[str]:
        return sorted(self._engines)

    def all(self) -> list[Engine]:
        return [self._engines[key] for key in self.keys()]


def discover_engines(settings: Settings) -> EngineRegistry:
    """Instantiate every engine registered under the entry-point group."""
    engines: dict[str, Engine] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = cast(EngineFactory, ep.load())
            engine = factory(settings)
        except Exception:
            # A broken third-party plug-in must not take the service down.
            log.exception("engine plug-in %r failed to load", ep.name)
            continue
        engines[engine.key] = engine
    return EngineRegistry(engines)
