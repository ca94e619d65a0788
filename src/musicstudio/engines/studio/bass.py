"""Bass lines in the genre's style: walking, boogie, offbeat house, rolling techno, reese...

Each style returns the notes of one bar as (offset, length, MIDI key, velocity); the writer
takes care of the sections (silent in intros and breakdowns, sparse in builds, a held
root under the final chord).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from musicstudio.engines.studio.harmony import Bar, Context
from musicstudio.engines.studio.humanise import NoteEvent
from musicstudio.engines.studio.plan import Part
from musicstudio.engines.studio.theory import Chord, fold_into, nearest_in

LOW = 28  # E1: lowest root; roots sit in [LOW, LOW + 11]
Note = tuple[float, float, int, float]


class _Line:
    """Bar-level facts a style needs: roots, chord tones, the next root, the kick steps."""

    def __init__(self, ctx: Context, bar: Bar, rng: random.Random) -> None:
        self.ctx = ctx
        self.bar = bar
        self.rng = rng
        self.kicks = ctx.groove.kick_steps(bar.index)

    def root(self, chord: Chord | None = None) -> int:
        """The root of ``chord`` (default: the bar's) in the bass register."""
        chord = chord or self.bar.chord
        return fold_into(self.ctx.plan.key_root + chord.root, LOW, LOW + 11)

    def tone(self, interval: int, chord: Chord | None = None) -> int:
        """A note ``interval`` semitones above the root."""
        return self.root(chord) + interval

    @property
    def next_root(self) -> int:
        """The next bar's root, for approach notes."""
        return self.root(self.bar.next_chord)

    @property
    def changes_next(self) -> bool:
        """Whether the harmony moves at the next bar."""
        return self.bar.next_chord.root != self.bar.chord.root


def _lofi(line: _Line) -> list[Note]:
    r = line.root()
    notes: list[Note] = [(0, 1.4, r, 100), (1.75, 0.5, r, 78), (2.5, 0.9, line.tone(7), 88)]
    if line.changes_next and line.rng.random() < 0.7:
        notes.append((3.5, 0.45, line.next_root + line.rng.choice((-1, 1, 2)), 76))
    elif line.rng.random() < 0.5:
        notes.append((3.5, 0.4, r + 12, 74))
    return notes


def _locked(line: _Line, long: bool) -> list[Note]:
    """Bass hits on the kick drum's steps: the two lock into one low punch (808, funk)."""
    steps = sorted(set(line.kicks)) or [0, 10]
    notes: list[Note] = []
    for i, step in enumerate(steps):
        until = steps[i + 1] if i + 1 < len(steps) else 16
        length = (until - step) * 0.25 * (0.95 if long else 0.5)
        offset = step * 0.25
        key = line.root(line.bar.chord_at(offset))
        if not long and i > 0 and line.rng.random() < 0.3:
            key += 12
        notes.append((offset, max(0.2, length), key, 104 if step == 0 else 90))
    return notes


def _offbeat(line: _Line) -> list[Note]:
    notes: list[Note] = []
    for beat in range(4):
        offset = beat + 0.5
        key = line.root(line.bar.chord_at(offset))
        if beat == 3 and line.rng.random() < 0.4:
            key += 12
        notes.append((offset, 0.4, key, 100))
    return notes


def _rolling(line: _Line) -> list[Note]:
    # Three 16ths after every kick: the rumble that fills the gaps in a four-on-the-floor.
    return [
        (beat + sixteenth * 0.25, 0.2, line.root(line.bar.chord_at(beat)), 96 - 8 * sixteenth)
        for beat in range(4)
        for sixteenth in (1, 2, 3)
    ]


def _reese(line: _Line) -> list[Note]:
    r = line.root()
    notes: list[Note] = [(0, 2.6, r, 100), (2.75, 0.9, r, 86)]
    if line.changes_next:
        notes[-1] = (2.75, 1.1, line.next_root, 86)
    elif line.rng.random() < 0.5:
        notes.append((3.5, 0.4, r + 12, 80))
    return notes


def _octaves(line: _Line) -> list[Note]:
    return [
        (i * 0.5, 0.42, line.root(line.bar.chord_at(i * 0.5)) + (12 if i % 2 else 0),
         100 if i % 2 == 0 else 84)
        for i in range(8)
    ]  # fmt: skip


def _root_fifth(line: _Line) -> list[Note]:
    r = line.root()
    approach = line.next_root + (2 if line.next_root < r else -2)
    return [(0, 1.4, r, 100), (1.5, 0.45, r, 84), (2, 1.4, line.tone(7), 92),
            (3.5, 0.45, approach, 82)]  # fmt: skip


def _eighths(line: _Line) -> list[Note]:
    notes: list[Note] = [
        (i * 0.5, 0.42, line.root(line.bar.chord_at(i * 0.5)), 100 if i % 2 == 0 else 84)
        for i in range(8)
    ]
    if line.changes_next and line.rng.random() < 0.5:
        notes[-1] = (3.5, 0.42, line.next_root - 1 if line.rng.random() < 0.5 else line.tone(7),
                     90)  # fmt: skip
    return notes


def _walking(line: _Line) -> list[Note]:
    """Four quarters: root, two steps through the chord, a chromatic step into the next root."""
    chord = line.bar.chord
    r = line.root()
    target = line.next_root
    if abs(target - r) > 6:
        target += 12 if target < r else -12
    scale = line.ctx.melody_scale(chord)
    second = r + line.rng.choice((chord.third, chord.fifth))
    third = nearest_in(int((second + target) / 2), list(scale))
    approach = target + (1 if third > target else -1)
    keys = [r, second, third, approach]
    return [(float(i), 0.95, fold_into(k, LOW, LOW + 22), 98 if i == 0 else 86)
            for i, k in enumerate(keys)]  # fmt: skip


def _boogie(line: _Line) -> list[Note]:
    chord = line.bar.chord
    r = line.root()
    seventh = chord.seventh or 10
    shape = (0, chord.third, 7, 9, seventh, 9, 7, chord.third)
    return [(i * 0.5, 0.45, r + s, 98 if i % 2 == 0 else 84) for i, s in enumerate(shape)]


def _funk(line: _Line) -> list[Note]:
    r = line.root()
    patterns = (
        ((0, 0.4, 0, 112), (0.75, 0.2, 12, 80), (1.5, 0.2, 0, 60), (1.75, 0.2, 10, 86),
         (2.5, 0.2, 12, 96), (3, 0.4, 7, 84), (3.75, 0.2, 0, 70)),
        ((0, 0.3, 0, 112), (0.5, 0.2, 0, 58), (1.25, 0.2, 12, 90), (2, 0.3, 0, 96),
         (2.75, 0.2, 10, 84), (3.25, 0.2, 7, 80), (3.5, 0.2, 12, 92)),
    )  # fmt: skip
    pattern = patterns[line.ctx.plan.seed % len(patterns)]
    return [(o, length, r + s, v) for o, length, s, v in pattern]


def _alternating(line: _Line) -> list[Note]:
    r = line.root()
    notes: list[Note] = [(0, 1.8, r, 98), (2, 1.8, line.tone(7) - 12 if r + 7 > LOW + 14
                                             else line.tone(7), 86)]  # fmt: skip
    if line.changes_next and line.rng.random() < 0.5:
        notes[-1] = (2, 0.9, notes[-1][2], 86)
        step = 1 if line.next_root > r else -1
        notes += [(3, 0.45, line.next_root - 2 * step, 80), (3.5, 0.45, line.next_root - step, 82)]
    return notes


def _pedal(line: _Line) -> list[Note]:
    r = line.root()
    if line.bar.section.energy >= 0.75 and line.ctx.plan.genre.key == "cinematic":
        # Driving low strings under an epic chorus.
        return [(i * 0.5, 0.4, r, 100 if i % 2 == 0 else 82) for i in range(8)]
    return [(offset, (until - offset) - 0.1, line.root(chord), 90)
            for offset, chord, until in _spans(line.bar)]  # fmt: skip


def _piano(line: _Line) -> list[Note]:
    return [(offset, min(2.0, until - offset), line.root(chord) + 12, 84)
            for offset, chord, until in _spans(line.bar)]  # fmt: skip


def _spans(bar: Bar) -> list[tuple[float, Chord, float]]:
    spans = []
    for i, (offset, chord) in enumerate(bar.changes):
        until = bar.changes[i + 1][0] if i + 1 < len(bar.changes) else min(4.0, bar.length)
        spans.append((offset, chord, until))
    return spans


_STYLES: dict[str, Callable[[_Line], list[Note]]] = {
    "lofi": _lofi,
    "808": lambda line: _locked(line, long=True),
    "offbeat": _offbeat,
    "rolling": _rolling,
    "reese": _reese,
    "octaves": _octaves,
    "root_fifth": _root_fifth,
    "eighths": _eighths,
    "walking": _walking,
    "boogie": _boogie,
    "funk": _funk,
    "alternating": _alternating,
    "pedal": _pedal,
    "piano": _piano,
}
_ALWAYS_ON = frozenset({"pedal", "piano", "walking"})


def write_bass(ctx: Context, part: Part) -> list[NoteEvent]:
    """The bass part: the genre's line, thinned by section, ending on a held root."""
    style = ctx.plan.genre.bass_style
    write = _STYLES.get(style, _root_fifth)
    rng = ctx.rng("bass")
    player = ctx.performer(part, spread=5.0)
    for bar in ctx.bars:
        line = _Line(ctx, bar, rng)
        dyn = ctx.dynamics(bar)
        name = bar.section.name
        if bar.is_end:
            lift = 12 if style == "piano" else 0
            player.play(bar.start, bar.length, line.root() + lift, 92 * dyn, exact=True)
            continue
        if name in ("intro", "breakdown") and style not in _ALWAYS_ON:
            continue
        if name == "build" and bar.position < bar.section.bars - 1:
            player.play(bar.start, 3.8, line.root(), 90 * dyn)
            continue
        notes = write(line)
        if name == "outro" and bar.position >= bar.section.bars - 2:
            notes = [(0.0, min(4.0, bar.length) - 0.1, line.root(), 84.0)]
        for offset, length, key, velocity in notes:
            if offset < bar.length:
                player.play(bar.start + offset, length, key, velocity * dyn)
    return player.events
