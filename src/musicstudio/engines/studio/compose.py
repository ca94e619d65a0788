"""Plan -> note events: chords, a bass line on the roots, a drum groove and a melody.

Times are composed in beats (4/4 bars) and converted to seconds here, with swing and a
few milliseconds of seeded humanisation. The output is a flat, sorted list of notes that
any renderer can play.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from musicstudio.engines.studio.plan import Part, Plan, sub_rng
from musicstudio.engines.studio.theory import (
    diatonic_chord,
    fold_into,
    nearest_in,
    scale_for,
    voice_chord,
)

BEATS_PER_BAR = 4

# 16-step drum grids per style: x = accent, o = normal, g = ghost. Alternatives per style
# are picked by the seed.
_GROOVES: dict[str, tuple[dict[int, str], ...]] = {
    "pop": (
        {36: "x.......x.o.....", 38: "....x.......x...", 42: "o.o.o.o.o.o.o.o."},
        {36: "x.....o.x.......", 38: "....x.......x...", 42: "o.o.o.o.o.o.o.og"},
    ),
    "rock": (
        {36: "x.....o.x.o.....", 38: "....x.......x...", 42: "x.o.x.o.x.o.x.o."},
        {36: "x.......x.x.....", 38: "....x.......x..g", 42: "x.o.x.o.x.o.x.o."},
    ),
    "house": (
        {
            36: "x...x...x...x...",
            39: "....o.......o...",
            42: "...g...g...g...g",
            46: "..o...o...o...o.",
        },
    ),
    "techno": (
        {
            36: "x...x...x...x...",
            42: "gg.ggg.ggg.ggg.g",
            46: "..o...o...o...o.",
            37: "......g.....g..g",
        },
    ),
    "lofi": (
        {36: "x......o..x.....", 38: "....x.......x...", 42: "o.g.o.g.o.g.o.gg"},
        {36: "x.........o..o..", 38: "....x.......x..g", 42: "o.o.o.o.o.o.o.o."},
    ),
    "hiphop": (
        {36: "x.....o...x..o..", 38: "....x.......x...", 42: "o.o.o.o.o.o.o.o."},
        {36: "x..o......x.....", 38: "....x.......x...", 42: "o.g.o.g.o.g.o.g."},
    ),
    "jazz": ({51: "x...o.g.x...o.g.", 44: "....o.......o...", 36: "g.......g......."},),
    "cinematic": ({35: "x.......o.......", 45: "......o.....o.o.", 41: "o.........o....."},),
    "soft": ({36: "o.......o.......", 70: "g.g.g.g.g.g.g.g.", 37: "....g.......g..."},),
}
_STEP_VELOCITY = {"x": 112, "o": 92, "g": 56}
# How long each drum sound is held before note-off (cymbals ring, skins are short).
_DRUM_SECONDS = {49: 2.0, 57: 2.0, 51: 0.9, 46: 0.4}
_TIMEKEEPERS = {42, 44, 46, 51, 70, 69, 54}
_KICKS = {35, 36}


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """One note: start/end in seconds, MIDI channel, key and velocity."""

    start: float
    end: float
    channel: int
    key: int
    velocity: int


@dataclass(frozen=True)
class Arrangement:
    """The composed piece: the plan it came from and its notes sorted by start time."""

    plan: Plan
    events: tuple[NoteEvent, ...]
    duration_seconds: float

    def events_on(self, channel: int) -> list[NoteEvent]:
        """The notes on one MIDI channel."""
        return [e for e in self.events if e.channel == channel]

    def note_counts(self) -> dict[str, int]:
        """Notes per role, for the recipe."""
        return {
            p.role: sum(1 for e in self.events if e.channel == p.channel) for p in self.plan.parts
        }


@dataclass(frozen=True)
class _Bar:
    index: int
    section: str  # intro | main | break | final
    chord: tuple[int, ...]  # chord tones as MIDI-ish pitches relative to C0 = 0
    next_root: int


class _Composer:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.genre = plan.genre
        self.rng = sub_rng(plan.seed, f"compose/{plan.genre.key}")
        self.beat_s = 60.0 / plan.tempo_bpm
        self.duration = float(plan.duration_seconds)
        self.total_beats = self.duration / self.beat_s
        self.events: list[NoteEvent] = []
        self.bars = self._bars()
        scale = scale_for(plan.mode)
        self.scale_pcs = [(plan.key_root + s) % 12 for s in scale]
        self.scale_pitches = [p for p in range(0, 128) if p % 12 in self.scale_pcs]

    # -- structure -----------------------------------------------------------------

    def _bars(self) -> list[_Bar]:
        n_bars = max(1, math.ceil(self.total_beats / BEATS_PER_BAR - 1e-9))
        # The closing tonic goes on the last bar that starts at least a beat before the end.
        final = int((self.total_beats - 1.0) // BEATS_PER_BAR) if self.total_beats >= 8 else None
        intro = 0 if n_bars < 4 else (1 if n_bars < 12 else 2)
        breakdown: set[int] = set()
        if n_bars >= 16 and final is not None:
            start = round(n_bars * 0.6)
            breakdown = {b for b in (start, start + 1) if b < final - 1}
        degrees: list[int] = []
        for i in range(n_bars):
            degree = self.plan.progression[(i - intro) % len(self.plan.progression)]
            degrees.append(degree)
        if final is not None:
            # A dominant before the closing tonic makes the ending sound like an ending.
            degrees[final] = 0
            if final >= 2:
                degrees[final - 1] = 4
        bars: list[_Bar] = []
        for i, degree in enumerate(degrees):
            tones = diatonic_chord(
                degree, self.plan.mode, self.genre.chord_size, self.genre.raise_leading_tone
            )
            chord = tuple(self.plan.key_root + t for t in tones)
            nxt = degrees[i + 1] if i + 1 < len(degrees) else degrees[0]
            next_root = self.plan.key_root + diatonic_chord(nxt, self.plan.mode, 1)[0]
            if final is not None and i >= final:
                section = "final"
            elif i < intro:
                section = "intro"
            elif i in breakdown:
                section = "break"
            else:
                section = "main"
            bars.append(_Bar(i, section, chord, next_root))
        if final is not None:
            del bars[final + 1 :]
        return bars

    # -- timing --------------------------------------------------------------------

    def _seconds(self, beat: float) -> float:
        unit, ratio = self.genre.swing_unit, self.genre.swing
        if ratio != 0.5:
            k = beat / unit
            nearest = round(k)
            if abs(k - nearest) < 1e-6 and nearest % 2 == 1:
                beat += (ratio - 0.5) * 2 * unit
        return beat * self.beat_s

    def _add(
        self,
        part: Part,
        beat: float,
        length_beats: float,
        key: int,
        velocity: float,
        jitter: float = 0.004,
        min_seconds: float = 0.03,
    ) -> None:
        start = self._seconds(beat) + (self.rng.uniform(-jitter, jitter) if jitter else 0.0)
        start = max(0.0, start)
        if start >= self.duration - 0.01 or not 0 <= key <= 127:
            return
        end = start + max(min_seconds, length_beats * self.beat_s)
        vel = round(velocity * (0.75 + 0.35 * self.plan.energy))
        vel = max(1, min(127, vel + self.rng.randint(-5, 5)))
        self.events.append(NoteEvent(start, end, part.channel, key, vel))

    # -- parts ---------------------------------------------------------------------

    def drums(self, part: Part) -> None:
        """A genre groove per bar: timekeepers only in the intro, no kick in the breakdown."""
        grooves = _GROOVES.get(self.genre.drum_style, _GROOVES["pop"])
        groove = self.rng.choice(grooves)
        fills = not self.plan.focus and self.plan.energy >= 0.45
        crash = 49
        for bar in self.bars:
            base = bar.index * BEATS_PER_BAR
            if bar.section == "final":
                kick = 35 if 35 in groove else 36
                self._drum(part, base, kick, 110)
                self._drum(part, base, crash, 96)
                continue
            fill_bar = fills and bar.index % 4 == 3 and self._next_section(bar) == "main"
            for note, steps in groove.items():
                if bar.section == "intro" and note not in _TIMEKEEPERS:
                    continue
                if bar.section == "break" and note in _KICKS:
                    continue
                for step, ch in enumerate(steps):
                    if ch == "." or (fill_bar and step >= 12):
                        continue
                    self._drum(part, base + step * 0.25, note, _STEP_VELOCITY[ch])
            if fill_bar:
                toms = (50, 48, 47, 45) if self.rng.random() < 0.5 else (38, 38, 38, 38)
                for i, tom in enumerate(toms):
                    self._drum(part, base + 3 + i * 0.25, tom, 70 + 12 * i)
            lift = bar.index > 0 and bar.index % 4 == 0 and bar.section == "main"
            if lift and self.genre.drum_style in ("pop", "rock", "house", "cinematic", "techno"):
                self._drum(part, base, crash, 88)

    def _drum(self, part: Part, beat: float, note: int, velocity: float) -> None:
        seconds = _DRUM_SECONDS.get(note, 0.15)
        self._add(part, beat, seconds / self.beat_s, note, velocity, jitter=0.002)

    def _next_section(self, bar: _Bar) -> str:
        return self.bars[bar.index + 1].section if bar.index + 1 < len(self.bars) else "end"

    def bass(self, part: Part) -> None:
        """A bass line on the chord roots, in the genre's rhythm, silent in intro/breakdown."""
        low = 28 if part.program not in (0,) else 36
        for bar in self.bars:
            if bar.section in ("intro", "break") and len(self.bars) >= 4:
                continue
            base = bar.index * BEATS_PER_BAR
            root = fold_into(bar.chord[0], low, low + 11)
            fifth = root + 7
            third = root + (bar.chord[1] - bar.chord[0])
            nxt = fold_into(bar.next_root, low, low + 11)
            if bar.section == "final":
                self._add(part, base, 4, root, 96)
                continue
            style = self.genre.bass_style
            notes: list[tuple[float, float, int, float]]
            if style == "whole":
                notes = [(0, 3.9, root, 92)]
            elif style == "eighths":
                notes = [(i * 0.5, 0.42, root, 100 if i % 2 == 0 else 84) for i in range(8)]
                if self.rng.random() < 0.4:
                    notes[-1] = (3.5, 0.42, root + 12, 90)
            elif style == "offbeat":
                notes = [(i + 0.5, 0.38, root, 98) for i in range(4)]
                if self.rng.random() < 0.5:
                    notes[-1] = (3.5, 0.38, root + 12, 92)
            elif style == "walking":
                approach = nxt + self.rng.choice((-1, 1))
                passing = self.rng.choice((fifth, third + 12 if third + 12 < low + 24 else third))
                notes = [(0, 0.95, root, 98), (1, 0.95, third, 86), (2, 0.95, passing, 90)]
                notes.append((3, 0.95, approach, 84))
            elif style == "lofi":
                notes = [(0, 1.4, root, 100), (1.75, 0.5, root, 80), (2.5, 0.9, fifth, 88)]
                if self.rng.random() < 0.6:
                    notes.append((3.5, 0.4, root + 12, 78))
            elif style == "piano":
                notes = [(0, 2, root, 84), (2, 2, fifth, 76)]
            else:  # root_fifth
                approach = nxt + (2 if nxt < root else -2)
                notes = [(0, 1.4, root, 100), (1.5, 0.45, root, 84), (2, 1.4, fifth, 92)]
                notes.append((3.5, 0.45, approach, 82))
            for offset, length, key, velocity in notes:
                self._add(part, base + offset, length, key, velocity)

    def chords(self, part: Part, style: str, center: int, velocity: float) -> None:
        """Voice-led chords in the given comping style, ending on a held tonic."""
        previous: tuple[int, ...] | None = None
        for bar in self.bars:
            base = bar.index * BEATS_PER_BAR
            if style == "power":
                root = fold_into(bar.chord[0], 40, 51)
                voicing: tuple[int, ...] = (root, root + 7, root + 12)
            else:
                voicing = voice_chord([t % 12 for t in bar.chord], center, previous)
                previous = voicing
            if bar.section == "final":
                self._strum(part, base, 4, voicing, velocity * 0.9, 0.01)
                continue
            if style == "sustain":
                self._strum(part, base, 3.95, voicing, velocity, 0.0)
            elif style == "halves":
                self._strum(part, base, 1.9, voicing, velocity, 0.004)
                self._strum(part, base + 2, 1.9, voicing, velocity * 0.88, 0.004)
            elif style == "stabs":
                for offset in (0.5, 1.5, 2.5, 3.5):
                    if self.rng.random() < 0.85:
                        self._strum(part, base + offset, 0.3, voicing, velocity, 0.0)
            elif style == "lofi":
                self._strum(part, base, 2.4, voicing, velocity, 0.018)
                self._strum(part, base + 2.5, 1.4, voicing, velocity * 0.8, 0.014)
            elif style == "comp":
                hits = [(0.0, 0.9), (1.5, 0.45)]
                hits.append(self.rng.choice(((2.5, 0.45), (3.0, 0.9), (3.5, 0.4))))
                for offset, length in hits:
                    self._strum(part, base + offset, length, voicing, velocity, 0.006)
            elif style == "power":
                for i in range(8):
                    accent = velocity if i % 2 == 0 else velocity * 0.8
                    self._strum(part, base + i * 0.5, 0.45, voicing, accent, 0.003)
            elif style == "arpeggio":
                low, mid, high = voicing[0], voicing[len(voicing) // 2], voicing[-1]
                for i, key in enumerate((low, high, mid, high, low, high, mid, high)):
                    self._add(
                        part, base + i * 0.5, 0.9, key, velocity * (1.0 if i % 4 == 0 else 0.8)
                    )
            else:
                self._strum(part, base, 3.9, voicing, velocity, 0.0)

    def _strum(
        self,
        part: Part,
        beat: float,
        length: float,
        voicing: tuple[int, ...],
        velocity: float,
        spread_s: float,
    ) -> None:
        # A small per-note delay imitates a rolled or strummed chord instead of a machine hit.
        for i, key in enumerate(voicing):
            self._add(part, beat + i * spread_s / self.beat_s, length, key, velocity)

    def melody(self, part: Part) -> None:
        """Two-bar motifs in an AABA form, snapped to chord tones on strong beats."""
        density = self.genre.melody_density * (0.6 if self.plan.focus else 1.0)
        low, high = part.center - 9, part.center + 10
        motifs = {"A": self._motif(density), "B": self._motif(density)}
        form = "AABA"
        pitch = nearest_in(part.center, [self.bars[0].chord[0] % 12])
        playable = [b for b in self.bars if b.section in ("main", "break")]
        slot = 0
        i = 0
        while i < len(playable):
            bar = playable[i]
            name = "B" if bar.section == "break" else form[slot % len(form)]
            motif = motifs[name]
            span = [bar, playable[i + 1]] if i + 1 < len(playable) else [bar]
            contiguous = len(span) == 2 and span[1].index == bar.index + 1
            if not contiguous:
                span = [bar]
            limit = 4.0 * len(span)
            for n, (offset, length, step) in enumerate(motif):
                if offset >= limit:
                    break
                current = span[int(offset // 4)]
                pitch = self._step(pitch, step, low, high)
                strong = offset % 2 == 0 or length >= 1.5
                last = n == len(motif) - 1 or motif[n + 1][0] >= limit
                if last and slot % 2 == 1:
                    pitch = nearest_in(pitch, [self.plan.key_root])
                elif strong:
                    pitch = nearest_in(pitch, [t % 12 for t in current.chord])
                pitch = fold_into(pitch, low, high)
                length = min(length, limit - offset)
                accent = 96 if offset % 4 == 0 else 86
                self._add(part, bar.index * BEATS_PER_BAR + offset, length * 0.92, pitch, accent)
            slot += 1
            i += len(span)
        for bar in self.bars:
            if bar.section == "final":
                tonic = fold_into(nearest_in(pitch, [self.plan.key_root]), low, high)
                self._add(part, bar.index * BEATS_PER_BAR, 4, tonic, 84)

    def _motif(self, density: float) -> list[tuple[float, float, int]]:
        if density < 0.45:
            lengths, weights, rest_p = (1.5, 2.0, 3.0, 4.0), (1, 3, 2, 2), 0.3
        elif density < 0.85:
            lengths, weights, rest_p = (0.5, 1.0, 1.5, 2.0), (2, 4, 2, 2), 0.2
        else:
            lengths, weights, rest_p = (0.5, 1.0, 1.5, 2.0), (5, 4, 2, 1), 0.15
        steps, step_weights = (-2, -1, 0, 1, 2, 3, -3, 4, -4), (2, 6, 1.5, 6, 2, 1, 1, 0.4, 0.4)
        t = self.rng.choice((0.0, 0.0, 0.5, 1.0))
        notes: list[tuple[float, float, int]] = []
        while t < 7.0:
            if notes and self.rng.random() < rest_p:
                t += self.rng.choice((0.5, 1.0))
                continue
            length = min(self.rng.choices(lengths, weights)[0], 8.0 - t)
            notes.append((t, length, self.rng.choices(steps, step_weights)[0]))
            t += length
        return notes or [(0.0, 4.0, 0)]

    def _step(self, pitch: int, steps: int, low: int, high: int) -> int:
        scale = self.scale_pitches
        idx = min(bisect.bisect_left(scale, pitch), len(scale) - 1)
        target = idx + steps
        # Turn back at the edges of the instrument's range instead of folding an octave.
        if not 0 <= target < len(scale) or not low <= scale[target] <= high:
            target = idx - steps
        return scale[max(0, min(len(scale) - 1, target))]

    def pad(self, part: Part) -> None:
        """Soft sustained chords under everything."""
        self.chords(part, "sustain", 55, 64)


def compose(plan: Plan) -> Arrangement:
    """Write the notes for every part of the plan (deterministic for a given plan)."""
    composer = _Composer(plan)
    genre = plan.genre
    for part in plan.parts:
        if part.role == "drums":
            composer.drums(part)
        elif part.role == "bass":
            composer.bass(part)
        elif part.role == "chords":
            center = 55 if genre.chord_style == "arpeggio" else 60
            composer.chords(part, genre.chord_style, center, 80)
        elif part.role == "pad":
            composer.pad(part)
        elif part.role == "melody":
            composer.melody(part)
    events = sorted(composer.events, key=lambda e: (e.start, e.channel, e.key))
    return Arrangement(plan=plan, events=tuple(events), duration_seconds=composer.duration)
