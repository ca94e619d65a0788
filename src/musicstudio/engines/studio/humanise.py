"""Beats -> seconds with swing, seeded timing/velocity humanisation, and the note event type.

Part writers think in beats and nominal velocities; a ``Performer`` turns each note into a
``NoteEvent`` the way a player would: swung off-beats, a few milliseconds early or late,
never exactly the same loudness twice. All of it comes from the part's own seeded
generator, so a render is repeatable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Velocities are whole steps of 4 ending at 127 (3, 7, ..., 127): 32 levels, 0.3 dB apart at
# forte, still finer than the humanisation (sigma 3). Renderers can then share a rendered
# note between equal velocities even on presets whose velocity moves a filter.
VELOCITY_STEP = 4


def on_velocity_grid(velocity: float) -> int:
    """The nearest grid velocity (3-127)."""
    steps = round((velocity - 127) / VELOCITY_STEP)
    return max(3, min(127, 127 + VELOCITY_STEP * steps))


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """One note: start/end in seconds, MIDI channel, key and velocity."""

    start: float
    end: float
    channel: int
    key: int
    velocity: int


def swing_beat(beat: float, ratio: float, unit: float) -> float:
    """Swing: stretch the first half of every pair of ``unit`` notes, squeeze the second.

    ``ratio`` is the long note's share of the pair (0.5 straight, 0.67 a triplet
    shuffle). The warp is piecewise linear inside each pair, so the off-beat lands at
    ``ratio`` and finer notes keep their order (a 16th never overtakes a swung 8th);
    notes on the pair's start, which is where the beat is felt, never move.
    """
    if ratio == 0.5 or unit <= 0:
        return beat
    pair = 2 * unit
    start = (beat // pair) * pair
    inside = beat - start
    if inside < unit:
        return start + inside * (ratio / 0.5)
    return start + pair * ratio + (inside - unit) * ((1 - ratio) / 0.5)


def section_dynamics(energy: float, plan_energy: float) -> float:
    """Velocity scale for a section: quieter intros and breakdowns, louder choruses."""
    return (0.62 + 0.38 * energy) * (0.82 + 0.25 * plan_energy)


@dataclass
class Performer:
    """Plays one part's notes onto its channel with swing and seeded humanisation."""

    channel: int
    beat_seconds: float
    duration: float
    rng: random.Random
    swing: float = 0.5
    swing_unit: float = 0.25
    timing_ms: float = 6.0
    velocity_spread: float = 6.0
    events: list[NoteEvent] = field(default_factory=list)

    def seconds(self, beat: float) -> float:
        """Where a (swung) beat position falls in seconds."""
        return swing_beat(beat, self.swing, self.swing_unit) * self.beat_seconds

    def play(
        self,
        beat: float,
        length: float,
        key: int,
        velocity: float,
        *,
        lag_ms: float = 0.0,
        timing_ms: float | None = None,
        min_seconds: float = 0.03,
        exact: bool = False,
        steady: bool = False,
    ) -> None:
        """Add a note of ``length`` beats; notes past the end or out of range are dropped.

        ``lag_ms`` plays consistently behind (or ahead of) the grid, like a lazy snare;
        ``exact`` skips the timing jitter (the piece's first downbeat, the final chord);
        ``steady`` skips the velocity jitter (sustained chords: a section holds a level).
        """
        if not 0 <= key <= 127:
            return
        spread = self.timing_ms if timing_ms is None else timing_ms
        jitter = 0.0
        if not exact and spread > 0:
            # Gaussian, but clipped: a real player is rarely off by more than twice the norm.
            jitter = max(-2 * spread, min(2 * spread, self.rng.gauss(0.0, spread / 2)))
        start = self.seconds(beat) + (jitter + lag_ms) / 1000.0
        start = max(0.0, start)
        if start >= self.duration - 0.01:
            return
        span = self.seconds(beat + length) - self.seconds(beat)
        end = min(self.duration, start + max(min_seconds, span))
        vel = velocity if steady else velocity + self.rng.gauss(0.0, self.velocity_spread / 2)
        self.events.append(NoteEvent(start, end, self.channel, key, on_velocity_grid(vel)))

    def chord(
        self,
        beat: float,
        length: float,
        keys: tuple[int, ...] | list[int],
        velocity: float,
        *,
        spread_ms: float = 0.0,
        downward: bool = False,
        exact: bool = False,
        steady: bool = False,
    ) -> None:
        """Several notes at once, rolled by ``spread_ms`` per note (a strum or a spread)."""
        order = sorted(keys, reverse=downward)
        for i, key in enumerate(order):
            # The later notes of a strum sound a little softer, as on a guitar.
            self.play(
                beat,
                length,
                key,
                velocity * (1.0 - 0.03 * i),
                lag_ms=i * spread_ms,
                exact=exact,
                steady=steady,
            )


def apply_edges(
    events: list[NoteEvent], fade_in: float, fade_out_from: float, duration: float
) -> list[NoteEvent]:
    """Scale velocities up from 40 % over ``fade_in`` s and down to 30 % after ``fade_out_from``.

    Focus segments use this so consecutive segments crossfade without a bump: nothing
    strikes hard in the first or last seconds.
    """
    out: list[NoteEvent] = []
    tail = max(1e-6, duration - fade_out_from)
    for e in events:
        scale = 1.0
        if fade_in > 0 and e.start < fade_in:
            scale = min(scale, 0.4 + 0.6 * e.start / fade_in)
        if e.start > fade_out_from:
            scale = min(scale, 1.0 - 0.7 * (e.start - fade_out_from) / tail)
        out.append(
            NoteEvent(e.start, e.end, e.channel, e.key, on_velocity_grid(e.velocity * scale))
        )
    return out
