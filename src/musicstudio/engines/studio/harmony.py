"""The timeline the part writers share: bars, their sections and chords, and the context.

Each section plays its own progression (verse, chorus, bridge) from its first bar; an
intro plays the *end* of the verse progression so it leads into the verse's first chord;
the last section before the ending closes with the genre's cadence (IV-V, ii7-V7, bVI-bVII,
a blues turnaround...) and the end bar holds the final tonic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property

from musicstudio.engines.studio.form import BEATS_PER_BAR, Section
from musicstudio.engines.studio.grooves import Groove, grooves_for
from musicstudio.engines.studio.humanise import Performer, section_dynamics
from musicstudio.engines.studio.plan import Part, Plan, sub_rng
from musicstudio.engines.studio.theory import (
    BLUES_SCALE,
    MAJOR_PENTATONIC,
    MINOR_PENTATONIC,
    Chord,
    chord_scale,
    is_minor_like,
    parse_chord,
    parse_progression,
    voice_chord,
    voicing_tones,
)

# Seconds a level change takes (``Context.ride``): long enough not to click on a held chord.
LEVEL_RAMP_S = 0.25


@dataclass(frozen=True)
class Bar:
    """One bar of the piece: where it is, which section it belongs to and its chords."""

    index: int
    length: float  # beats; 4 except the end bar, which runs to the end of the piece
    section: Section
    position: int  # bar number inside the section
    changes: tuple[tuple[float, Chord], ...]  # (beat offset in the bar, chord)
    next_chord: Chord
    next_section: str  # name of the following section ("" after the end bar)

    @property
    def start(self) -> float:
        """The bar's first beat, counted from the start of the piece."""
        return float(self.index * BEATS_PER_BAR)

    @property
    def chord(self) -> Chord:
        """The chord on the bar's downbeat."""
        return self.changes[0][1]

    @property
    def is_end(self) -> bool:
        """Whether this is the final bar (held chord and ring-out)."""
        return self.section.name == "end"

    @property
    def is_section_end(self) -> bool:
        """Whether the bar is the last of its section."""
        return self.position == self.section.bars - 1

    def chord_at(self, offset: float) -> Chord:
        """The chord sounding ``offset`` beats into the bar."""
        current = self.changes[0][1]
        for at, chord in self.changes:
            if at <= offset + 1e-9:
                current = chord
        return current


def _cadence(plan: Plan) -> tuple[Chord, ...]:
    genre = plan.genre
    text = genre.cadence_minor if is_minor_like(plan.mode) else genre.cadence_major
    return parse_progression(text)


def build_timeline(plan: Plan) -> tuple[Bar, ...]:
    """Every bar of the plan with its chord changes, ending with the held final chord."""
    beats_total = plan.duration_seconds * plan.tempo_bpm / 60.0
    per_chord = max(1, plan.genre.bars_per_chord)
    progressions = {
        name: parse_progression(plan.progression_named(name))
        for name in ("verse", "chorus", "bridge")
    }
    final = parse_chord(plan.final_chord)
    body = [s for s in plan.sections if s.name != "end"]
    changes: list[list[tuple[float, Chord]]] = []
    owners: list[tuple[Section, int]] = []
    for section in body:
        chords = progressions.get(section.harmony, progressions["verse"])
        for position in range(section.bars):
            step = position - section.bars if section.name == "intro" else position
            changes.append([(0.0, chords[(step // per_chord) % len(chords)])])
            owners.append((section, position))
    if changes:
        # The cadence takes the last bars before the ending, whichever sections they are in.
        cadence = _cadence(plan)
        if len(changes) > len(cadence):
            for i, chord in enumerate(cadence):
                changes[len(changes) - len(cadence) + i] = [(0.0, chord)]
        elif len(changes) >= 2:
            changes[-1] = [(0.0, cadence[-1])]
        else:
            # A one-bar phrase: its chord for two beats, then the dominant.
            changes[-1] = [changes[-1][0], (2.0, cadence[-1])]
    end_section = plan.sections[-1]
    changes.append([(0.0, final)])
    owners.append((end_section, 0))
    bars: list[Bar] = []
    for index, (section, position) in enumerate(owners):
        is_last = index == len(owners) - 1
        length = max(0.5, beats_total - index * BEATS_PER_BAR) if is_last else float(BEATS_PER_BAR)
        next_chord = final if is_last else changes[index + 1][0][1]
        next_section = "" if is_last else owners[index + 1][0].name
        bars.append(
            Bar(index, length, section, position, tuple(changes[index]), next_chord, next_section)
        )
    return tuple(bars)


@dataclass
class Context:
    """What every part writer needs: the plan, its bars, its groove and seeded helpers."""

    plan: Plan
    bars: tuple[Bar, ...]
    # Level automation per channel: (seconds, gain) breakpoints, linear between them.
    levels: dict[int, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def beat_seconds(self) -> float:
        """Seconds per beat."""
        return 60.0 / self.plan.tempo_bpm

    @cached_property
    def groove(self) -> Groove:
        """The drum groove the plan chose (the bass locks to its kicks)."""
        variants = grooves_for(self.plan.genre.groove)
        return variants[min(self.plan.groove, len(variants) - 1)]

    def rng(self, purpose: str) -> random.Random:
        """A generator of its own for one purpose (one part, one decision)."""
        return sub_rng(self.plan.seed, f"compose/{purpose}/{self.plan.genre.key}")

    def performer(self, part: Part, *, timing_ms: float | None = None, spread: float = 6.0
                  ) -> Performer:  # fmt: skip
        """A performer for ``part`` with the genre's swing and timing looseness."""
        genre = self.plan.genre
        return Performer(
            channel=part.channel,
            beat_seconds=self.beat_seconds,
            duration=float(self.plan.duration_seconds),
            rng=self.rng(f"humanise/{part.role}"),
            swing=genre.swing,
            swing_unit=genre.swing_unit,
            timing_ms=genre.timing_ms if timing_ms is None else timing_ms,
            velocity_spread=spread,
        )

    def dynamics(self, bar: Bar) -> float:
        """Velocity scale of the bar's section."""
        return section_dynamics(bar.section.energy, self.plan.energy)

    def ride(self, part: Part, bar: Bar, gain: float) -> None:
        """Set ``part``'s level from ``bar`` on, like a fader ride: a ramp of
        ``LEVEL_RAMP_S`` ending on the bar's downbeat when the level changes."""
        lane = self.levels.setdefault(part.channel, [])
        at = bar.start * self.beat_seconds
        if not lane:
            lane.append((0.0, gain))
        elif lane[-1][1] != gain:
            lane.append((max(lane[-1][0], at - LEVEL_RAMP_S), lane[-1][1]))
            lane.append((at, gain))

    def pitch_classes(self, chord: Chord) -> tuple[int, ...]:
        """The chord's pitch classes in the plan's key."""
        return chord.pitch_classes(self.plan.key_root)

    def voicing(
        self, chord: Chord, center: int, previous: tuple[int, ...] | None, size: int
    ) -> tuple[int, ...]:
        """A voice-led voicing of ``size`` notes near ``center``."""
        tones = voicing_tones(chord, size)
        pcs = [(self.plan.key_root + t) % 12 for t in tones]
        return voice_chord(pcs, center, previous)

    def melody_scale(self, chord: Chord) -> tuple[int, ...]:
        """Pitch classes a melody may use over ``chord``."""
        root = self.plan.key_root
        style = self.plan.genre.melody_scale
        if style == "blues":
            return tuple((root + s) % 12 for s in BLUES_SCALE)
        steps = chord_scale(self.plan.mode, chord)
        if style == "pentatonic":
            penta = MINOR_PENTATONIC if is_minor_like(self.plan.mode) else MAJOR_PENTATONIC
            tones = {t % 12 for t in chord.tones}
            # Keep only pentatonic notes that do not rub a semitone against the chord.
            safe = [
                s
                for s in penta
                if s % 12 in tones or all(abs((s - t) % 12) not in (1, 11) for t in tones)
            ]
            steps = tuple(safe) or steps
        return tuple((root + s) % 12 for s in steps)
