"""The engine plug-in interface: capabilities, a render request, and its result.

An engine is any object with a ``key``, a ``capabilities()`` method and a
``render(request, progress, cancelled)`` method. ``render`` runs in a worker
process (never in the API), may take seconds to minutes, reports progress as an
int 0-99 through ``progress`` and calls ``cancelled()`` between stages, raising
``RenderCancelled`` when it returns True.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Mode = Literal["creation", "focus"]
LicenceClass = Literal["commercial_cleared", "commercial_enterprise", "personal_only", "unclear"]

ProgressFn = Callable[[int], None]
CancelledFn = Callable[[], bool]


class RenderCancelled(Exception):
    """Raised by an engine when ``cancelled()`` returned True at a checkpoint."""


class RenderError(Exception):
    """A failure whose message is safe to show a user (no paths, no traces)."""


@dataclass(frozen=True)
class Licence:
    licence_class: LicenceClass
    licence_version: str
    commercial_use: bool
    requires_attribution: bool


@dataclass(frozen=True)
class EngineCapabilities:
    engine_key: str
    name: str
    description: str
    modes: tuple[str, ...]
    max_duration_seconds: int
    supports_vocals: bool
    supports_lyrics: bool
    supports_stems: bool
    supported_languages: tuple[str, ...]
    output_formats: tuple[str, ...]
    licence: Licence
    enabled: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The reference's engine object."""
        return {
            "engine_key": self.engine_key,
            "name": self.name,
            "description": self.description,
            "modes": list(self.modes),
            "max_duration_seconds": self.max_duration_seconds,
            "supports_vocals": self.supports_vocals,
            "supports_lyrics": self.supports_lyrics,
            "supports_stems": self.supports_stems,
            "supported_languages": list(self.supported_languages),
            "output_formats": list(self.output_formats),
            "licence_class": self.licence.licence_class,
            "licence_version": self.licence.licence_version,
            "commercial_use": self.licence.commercial_use,
            "requires_attribution": self.licence.requires_attribution,
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class FocusSegment:
    """Segment ``index`` (0, 1, 2...) of the focus session ``session_seed``: every segment of
    a session shares its tempo and key, so consecutive ones crossfade cleanly.

    ``intensity`` is ``low``, ``medium`` or ``high``; ``divergence`` (0-1) is how far each
    segment may wander from the session's first one.
    """

    session_seed: int
    index: int
    intensity: str = "medium"
    divergence: float = 0.0


@dataclass(frozen=True)
class RenderRequest:
    job_id: str
    prompt: str
    duration_seconds: int
    work_dir: Path
    mode: Mode = "creation"
    instrumental: bool = False
    lyrics: str | None = None
    style_tags: tuple[str, ...] = ()
    title: str | None = None
    seed: int | None = None
    output_format: str = "mp3"
    # The recipe of a track to continue (``seed_track_id``): keep its tempo, key and
    # instrumentation and carry its progression on. None for a fresh piece.
    continuation: dict[str, Any] | None = None
    # A focus-session segment (``mode`` is then "focus"); None for a standalone piece.
    focus: FocusSegment | None = None


@dataclass
class DeferredStems:
    """Stems an engine writes after the master is published.

    Encoding one file per part can take longer than everything else in a render, so an
    engine may return its stems unencoded: ``names`` says which will come, ``make()``
    writes them into the request's work dir and returns name -> file, ``discard()`` frees
    what they would be made from. Callers run exactly one of the two, once, from the
    thread of their choice, before the work dir is removed (``finish_stems`` does this).
    """

    names: tuple[str, ...]
    make: Callable[[], dict[str, Path]]
    discard: Callable[[], None]


@dataclass
class RenderResult:
    """What a render produced: a master file inside ``request.work_dir`` and its facts."""

    audio_path: Path
    mime_type: str
    measured_duration_seconds: float
    title: str
    licence: Licence
    recipe: dict[str, Any] = field(default_factory=dict)
    # Each part on its own (name -> file in work_dir), if the engine makes stems; and the
    # composition as a Standard MIDI File, if it has one.
    stems: dict[str, Path] = field(default_factory=dict)
    midi_path: Path | None = None
    # Stems still to be written (see ``DeferredStems``); ``stems`` holds the ready ones.
    deferred_stems: DeferredStems | None = None


def finish_stems(result: RenderResult) -> dict[str, Path]:
    """Write any deferred stems into ``result.stems`` and return them all."""
    deferred, result.deferred_stems = result.deferred_stems, None
    if deferred is not None:
        result.stems.update(deferred.make())
    return result.stems


def discard_stems(result: RenderResult) -> None:
    """Free deferred stems that will not be written (a cancelled or failed publication)."""
    deferred, result.deferred_stems = result.deferred_stems, None
    if deferred is not None:
        deferred.discard()


@runtime_checkable
class Engine(Protocol):
    key: str

    def capabilities(self) -> EngineCapabilities: ...

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult: ...
