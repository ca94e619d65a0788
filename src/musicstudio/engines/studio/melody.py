"""The melody: short motifs developed into 4-bar phrases, sections with their own themes.

A motif is one bar of rhythm plus a contour in scale steps. Phrases repeat and vary it the
way songwriters do: literal repeat, sequence (the same shape a step higher or lower),
rhythmic displacement (half a beat later), and a contrasting answer (call and response);
the last bar of a phrase lands on a chord tone and holds it (a cadence). Verses use the
A/B motifs low in the register, choruses a denser hook higher up, bridges a new motif.
Motifs come from ``plan.motif_seed``, so a continued track keeps its themes.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

from musicstudio.engines.studio.harmony import Bar, Context
from musicstudio.engines.studio.humanise import NoteEvent
from musicstudio.engines.studio.plan import Part, sub_rng
from musicstudio.engines.studio.theory import nearest_in

Cells = tuple[tuple[tuple[float, float], ...], ...]

# (offset, length) rhythm cells of one beat (or two for the sparse ones).
_CELLS_SPARSE: Cells = (((0.0, 2.0),), ((0.0, 1.5), (1.5, 0.5)), ((0.0, 1.0), (1.0, 1.0)), ())
_CELLS_MEDIUM: Cells = (((0.0, 1.0),), ((0.0, 0.5), (0.5, 0.5)), ((0.0, 0.75), (0.75, 0.25)),
                 ((0.5, 0.5),), ())  # fmt: skip
_CELLS_DENSE: Cells = (((0.0, 0.5), (0.5, 0.5)), ((0.0, 0.25), (0.25, 0.25), (0.5, 0.5)),
                ((0.0, 0.5), (0.5, 0.25), (0.75, 0.25)), ((0.0, 1.0),), ((0.5, 0.5),))  # fmt: skip
_STEPS = (-2, -1, 0, 1, 2, 3, -3, 4, -4)
_STEP_WEIGHTS = (2.5, 6.0, 1.5, 6.0, 2.5, 1.0, 1.0, 0.4, 0.4)

# Phrase templates: per bar (motif, variation); "cad" ends the phrase on a held chord tone.
_VERSE_PHRASES = (
    (("A", "same"), ("A", "up"), ("B", "same"), ("A", "cad")),
    (("A", "same"), ("B", "same"), ("A", "down"), ("B", "cad")),
    (("A", "same"), ("A", "shift"), ("B", "up"), ("A", "cad")),
)
_CHORUS_PHRASES = (
    (("H", "same"), ("H", "up"), ("H", "same"), ("B", "cad")),
    (("H", "same"), ("B", "same"), ("H", "same"), ("H", "cad")),
)
_BRIDGE_PHRASES = ((("C", "same"), ("C", "down"), ("C", "down"), ("B", "cad")),)
_REGISTER = {"verse": -2, "chorus": 3, "drop": 3, "bridge": 1, "phrase": 0, "breakdown": 0}


@dataclass(frozen=True)
class Motif:
    """One bar of melody: (offset, length, scale steps from the previous note) per note."""

    notes: tuple[tuple[float, float, int], ...]


def make_motif(rng: random.Random, density: float, *, hook: bool = False,
               answer: bool = False) -> Motif:  # fmt: skip
    """A one-bar motif; ``hook`` repeats its first cell, ``answer`` starts after a breath."""
    weights: tuple[float, ...]
    if density < 0.45:
        cells, weights = _CELLS_SPARSE, (3, 2, 2, 1)
        beat_len = 2.0
    elif density < 0.9:
        cells, weights = _CELLS_MEDIUM, (3, 4, 2, 1, 1)
        beat_len = 1.0
    else:
        cells, weights = _CELLS_DENSE, (4, 2, 2, 2, 1)
        beat_len = 1.0
    # Leave the last beat free (a breath between motifs) unless the motif is very dense.
    end = 4.0 if density >= 1.2 else 3.0
    t = rng.choice((0.5, 1.0)) if answer else 0.0
    rhythm: list[tuple[float, float]] = []
    first: tuple[tuple[float, float], ...] | None = None
    while t < end - 1e-9:
        options = [c for c in cells if c] if not rhythm else list(cells)
        cell = rng.choices(options, weights[: len(options)])[0]
        if hook and first is not None and rng.random() < 0.6:
            cell = first  # a hook repeats its rhythm: that is what makes it stick
        first = first or (cell or None)
        for offset, length in cell:
            if t + offset < end - 1e-9:
                rhythm.append((t + offset, length))
        t += beat_len
    if not rhythm:
        rhythm.append((0.0, 2.0))
    notes: list[tuple[float, float, int]] = []
    previous_step = 0
    for i, (offset, length) in enumerate(rhythm):
        if i == 0:
            step = rng.choice((0, 0, 1, -1, 2))
        elif abs(previous_step) >= 3:
            step = -1 if previous_step > 0 else 1  # a leap is followed by a step back
        else:
            step = rng.choices(_STEPS, _STEP_WEIGHTS)[0]
        previous_step = step
        nxt = rhythm[i + 1][0] if i + 1 < len(rhythm) else end
        notes.append((offset, max(length, min(nxt - offset, 2.0)), step))
    return Motif(tuple(notes))


class _Writer:
    def __init__(self, ctx: Context, part: Part) -> None:
        self.ctx = ctx
        plan = ctx.plan
        self.player = ctx.performer(part, spread=8.0)
        self.rng = ctx.rng("melody")
        density = plan.genre.melody_density * plan.density
        motif_rng = sub_rng(plan.motif_seed, f"motifs/{plan.genre.key}")
        self.motifs = {
            "A": make_motif(motif_rng, density),
            "B": make_motif(motif_rng, density * 0.9, answer=True),
            "H": make_motif(motif_rng, min(1.3, density * 1.25), hook=True),
            "C": make_motif(motif_rng, density * 0.8, answer=True),
        }
        self.center = part.center
        self.low, self.high = part.center - 10, part.center + 12
        self.pitch = part.center
        self.anchor = part.center
        self.staccato = part.program in range(80, 88)

    def scale(self, bar: Bar, offset: float) -> list[int]:
        """Playable pitches of the melody scale at ``offset`` in ``bar``."""
        pcs = self.ctx.melody_scale(bar.chord_at(offset))
        return [p for p in range(self.low - 12, self.high + 13) if p % 12 in pcs]

    def step(self, pitch: int, steps: int, scale: list[int]) -> int:
        """Move ``steps`` scale steps from ``pitch``, turning back at the range edges."""
        idx = min(bisect.bisect_left(scale, pitch), len(scale) - 1)
        target = idx + steps
        # Turn back at the edges of the instrument's range instead of jumping an octave.
        if not 0 <= target < len(scale) or not self.low <= scale[target] <= self.high:
            target = idx - steps
        return scale[max(0, min(len(scale) - 1, target))]

    def chord_tone(self, pitch: int, bar: Bar, offset: float, tonic: bool = False) -> int:
        """The chord tone (or tonic) nearest ``pitch`` inside the range."""
        if tonic:
            allowed: list[int] = [self.ctx.plan.key_root]
        else:
            allowed = list(self.ctx.pitch_classes(bar.chord_at(offset)))
        if self.ctx.plan.genre.melody_scale == "blues" and not tonic:
            # Blues phrases land on the root, fifth, flat seventh or the blue third.
            allowed = [(self.ctx.plan.key_root + i) % 12 for i in (0, 7, 10, 3)]
        snapped = nearest_in(pitch, allowed)
        while snapped > self.high:
            snapped -= 12
        while snapped < self.low:
            snapped += 12
        return snapped

    def play_bar(self, bar: Bar, name: str, variation: str, anchor: int, dyn: float) -> None:
        """Play motif ``name`` over ``bar`` with a variation, starting near ``anchor``."""
        motif = self.motifs[name]
        notes = list(motif.notes)
        if variation == "cad":
            # A phrase ending: the motif's opening, then a long note to rest on.
            opening = [n for n in notes if n[0] < 2.0] or notes[:1]
            notes = opening
        if variation == "shift":
            notes = [(o + 0.5, n, s) for o, n, s in notes if o + 0.5 < 3.75]
        shift = {"up": 1, "down": -1}.get(variation, 0)
        scale = self.scale(bar, 0.0)
        pitch = self.step(anchor, shift, scale) if shift else anchor
        limit = min(4.0, bar.length)
        for i, (offset, length, steps) in enumerate(notes):
            if offset >= limit:
                break
            scale = self.scale(bar, offset)
            pitch = self.step(pitch, steps, scale)
            last = i == len(notes) - 1 or notes[i + 1][0] >= limit
            strong = offset % 2 == 0 or length >= 1.0
            if last and variation == "cad":
                tonic = bar.chord_at(offset).root == 0
                pitch = self.chord_tone(pitch, bar, offset, tonic=tonic)
                length = limit - offset
            elif strong and self.ctx.plan.genre.melody_scale != "blues":
                pitch = self.chord_tone(pitch, bar, offset)
            accent = 100 if offset == 0 else (90 if offset % 1 == 0 else 82)
            held = length * (0.6 if self.staccato and length <= 0.5 else 0.92)
            self.player.play(bar.start + offset, held, pitch, accent * dyn)
        self.pitch = pitch


def _phrases(name: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    if name in ("chorus", "drop"):
        return _CHORUS_PHRASES
    if name in ("bridge", "breakdown"):
        return _BRIDGE_PHRASES
    return _VERSE_PHRASES


def _plays(ctx: Context, bar: Bar) -> bool:
    name = bar.section.name
    if name in ("intro", "build", "outro", "end"):
        return False
    if name == "breakdown":
        return bar.position % 2 == 0  # fragments only: the breakdown is thin
    if ctx.plan.genre.form == "blues" and name == "verse":
        return bar.position % 4 < 2  # call and response with the band
    if ctx.plan.focus and bar.section.energy < 0.5:
        return bar.position % 4 < 2
    return True


def write_melody(ctx: Context, part: Part) -> list[NoteEvent]:
    """The melody part: motif-based phrases per section and a held tonic at the end."""
    writer = _Writer(ctx, part)
    phrase_choice: dict[str, int] = {}
    played_last = False
    for bar in ctx.bars:
        dyn = ctx.dynamics(bar)
        if bar.is_end:
            if played_last:
                tonic = writer.chord_tone(writer.pitch, bar, 0.0, tonic=True)
                writer.player.play(bar.start, bar.length, tonic, 84 * dyn, exact=True)
            continue
        if not _plays(ctx, bar):
            played_last = False
            continue
        name = bar.section.name
        phrases = _phrases(name)
        # Every verse sings the verse tune and every chorus the hook: that is song form.
        if name not in phrase_choice:
            phrase_choice[name] = writer.rng.randrange(len(phrases))
        # Each new phrase in a section takes the next template: repetition with variety.
        template = phrases[(phrase_choice[name] + bar.position // 4) % len(phrases)]
        size = min(4, bar.section.bars)
        slot = bar.position % 4
        remaining = bar.section.bars - bar.position
        # The last bar of each phrase (or of a short section) cadences.
        if slot == size - 1 or remaining == 1:
            motif, variation = template[-1][0], "cad"
        else:
            motif, variation = template[slot]
        if slot == 0:
            register = writer.center + _REGISTER.get(name, 0)
            pcs = ctx.pitch_classes(bar.chord)
            writer.anchor = nearest_in(register, list(pcs))
        writer.play_bar(bar, motif, variation, writer.anchor, dyn)
        played_last = True
    return writer.player.events
