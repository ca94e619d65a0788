"""Plan -> note events: every part written over one shared timeline of bars and chords.

The writers live in their own modules (``drums``, ``bass``, ``harmony_comp``, ``melody``);
this module runs them and collects a flat, sorted list of notes any renderer can play.
Times are in seconds and never reach past ``plan.duration_seconds``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from musicstudio.engines.studio.bass import write_bass
from musicstudio.engines.studio.drums import write_drums
from musicstudio.engines.studio.form import BEATS_PER_BAR
from musicstudio.engines.studio.harmony import Bar, Context, build_timeline
from musicstudio.engines.studio.harmony_comp import write_chords, write_pad
from musicstudio.engines.studio.humanise import NoteEvent, apply_edges
from musicstudio.engines.studio.melody import write_melody
from musicstudio.engines.studio.plan import Part, Plan

__all__ = ["BEATS_PER_BAR", "Arrangement", "NoteEvent", "compose"]

# Seconds over which focus music fades in from and out to quiet velocities.
FOCUS_EDGE_SECONDS = 8.0

_WRITERS: dict[str, Callable[[Context, Part], list[NoteEvent]]] = {
    "drums": write_drums,
    "bass": write_bass,
    "chords": write_chords,
    "pad": write_pad,
    "melody": write_melody,
}


@dataclass(frozen=True)
class Arrangement:
    """The composed piece: the plan it came from and its notes sorted by start time."""

    plan: Plan
    events: tuple[NoteEvent, ...]
    duration_seconds: float
    bars: tuple[Bar, ...] = ()
    # Level automation per channel: (seconds, gain) breakpoints, linear between them and
    # flat after the last; a channel without one plays at gain 1.
    levels: Mapping[int, tuple[tuple[float, float], ...]] = field(default_factory=dict)

    def level_lane(self, channel: int) -> tuple[tuple[float, float], ...]:
        """The channel's level breakpoints (empty: constant gain 1)."""
        return tuple(self.levels.get(channel, ()))

    def events_on(self, channel: int) -> list[NoteEvent]:
        """The notes on one MIDI channel."""
        return [e for e in self.events if e.channel == channel]

    def note_counts(self) -> dict[str, int]:
        """Notes per role, for the recipe."""
        return {
            p.role: sum(1 for e in self.events if e.channel == p.channel) for p in self.plan.parts
        }

    def chord_symbols(self) -> list[str]:
        """The chord on each bar's downbeat, as Roman numerals (for tests and the recipe)."""
        return [bar.chord.symbol for bar in self.bars]


def compose(plan: Plan) -> Arrangement:
    """Write the notes for every part of the plan (deterministic for a given plan)."""
    bars = build_timeline(plan)
    ctx = Context(plan, bars)
    events: list[NoteEvent] = []
    for part in plan.parts:
        writer = _WRITERS.get(part.role)
        if writer is not None:
            events += writer(ctx, part)
    duration = float(plan.duration_seconds)
    if plan.focus:
        edge = min(FOCUS_EDGE_SECONDS, duration / 4)
        events = apply_edges(events, edge, duration - edge, duration)
    events.sort(key=lambda e: (e.start, e.channel, e.key, e.end, e.velocity))
    levels = {channel: tuple(lane) for channel, lane in ctx.levels.items()}
    return Arrangement(
        plan=plan, events=tuple(events), duration_seconds=duration, bars=bars, levels=levels
    )
