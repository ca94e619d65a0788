"""Prompt -> plan: genre, tempo, key, instruments and form, chosen with a seeded generator.

The plan is everything the composer needs and everything worth recording in the recipe.
All randomness comes from ``random.Random`` instances derived from the seed, so the same
prompt and seed always give the same plan. Precedence for each decision: a continued
track's recipe, then what the prompt says, then the genre's defaults drawn by the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from musicstudio.engines.studio.form import Section, plan_form
from musicstudio.engines.studio.genres import Genre
from musicstudio.engines.studio.grooves import grooves_for
from musicstudio.engines.studio.prompt import (
    MAX_TEMPO,
    MIN_TEMPO,
    PromptCues,
    default_genre,
    mentions,
    normalise_text,
    parse_prompt,
)
from musicstudio.engines.studio.prompt_continuation import Carried, next_chord_index, read_recipe
from musicstudio.engines.studio.prompt_instruments import DRUM_CHANNEL, Part, choose_parts
from musicstudio.engines.studio.theory import Mode, is_minor_like, key_name

__all__ = [
    "DRUM_CHANNEL",
    "MAX_TEMPO",
    "MIN_TEMPO",
    "TITLE_MAX",
    "Part",
    "Plan",
    "derive_seed",
    "make_plan",
    "make_title",
    "normalise_text",
    "sub_rng",
]

TITLE_MAX = 80
INTENSITIES = ("low", "medium", "high")
_INTENSITY_ENERGY = {"low": 0.3, "medium": 0.45, "high": 0.6}
_INTENSITY_DENSITY = {"low": 0.8, "medium": 1.0, "high": 1.25}


@dataclass(frozen=True)
class Plan:
    """What to compose: the musical decisions taken from the prompt and the seed."""

    seed: int
    duration_seconds: int
    genre: Genre
    tempo_bpm: int
    key_root: int
    key_name: str
    mode: Mode
    progression: tuple[str, ...]
    parts: tuple[Part, ...]
    energy: float
    focus: bool
    mood: str | None
    title: str
    progressions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    final_chord: str = "I"
    sections: tuple[Section, ...] = ()
    moods: tuple[str, ...] = ()
    groove: int = 0
    density: float = 1.0
    motif_seed: int = 0
    intensity: str | None = None
    continued: bool = False
    ending: str = "cadence"
    cues: PromptCues | None = None
    segment_index: int | None = None
    session_seed: int | None = None
    divergence: float | None = None

    @property
    def has_drums(self) -> bool:
        """Whether the arrangement has a drum part."""
        return any(p.is_drums for p in self.parts)

    @property
    def swing(self) -> float:
        """Long/short ratio of swung pairs (0.5 = straight)."""
        return self.genre.swing

    def part(self, role: str) -> Part | None:
        """The part playing ``role``, if the arrangement has one."""
        return next((p for p in self.parts if p.role == role), None)

    def progression_named(self, name: str) -> tuple[str, ...]:
        """The progression a section plays (``verse`` is the main one)."""
        if name == "final":
            return (self.final_chord,)
        return dict(self.progressions).get(name, self.progression)

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data for the render recipe (and for continuations)."""
        data: dict[str, Any] = {
            "genre": self.genre.key,
            "genre_label": self.genre.label,
            "tempo_bpm": self.tempo_bpm,
            "time_signature": "4/4",
            "key": self.key_name,
            "key_root": self.key_root,
            "mode": self.mode,
            "progression": list(self.progression),
            "progressions": {name: list(p) for name, p in self.progressions},
            "final_chord": self.final_chord,
            "next_progression_index": next_chord_index(self.progression, self.genre.form),
            "instruments": [p.as_dict() for p in self.parts],
            "drums": self.has_drums,
            "groove": grooves_for(self.genre.groove)[self.groove].name,
            "swing": self.genre.swing,
            "energy": round(self.energy, 2),
            "mood": self.mood,
            "moods": list(self.moods),
            "form": self.genre.form,
            "sections": [s.as_dict() for s in self.sections],
            "ending": self.ending,
            "focus": self.focus,
            "intensity": self.intensity,
            "continued": self.continued,
            "seed": self.seed,
            "motif_seed": self.motif_seed,
        }
        if self.cues is not None:
            data["cues"] = self.cues.as_dict()
        if self.segment_index is not None:
            data["focus_segment"] = {
                "index": self.segment_index,
                "session_seed": self.session_seed,
                "divergence": self.divergence,
            }
        return data


def derive_seed(job_id: str) -> int:
    """A stable 31-bit seed from a job id (``hash()`` is salted per process, so not that)."""
    digest = hashlib.sha256(job_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def sub_rng(seed: int, purpose: str) -> random.Random:
    """An independent generator per purpose, so changing one stage leaves the others' draws."""
    return random.Random(f"musicstudio-studio/{seed}/{purpose}")


def make_title(genre: Genre, key: str, mode: str, mood: str | None) -> str:
    """A short descriptive title such as "Rainy Lo-fi Hip Hop in D minor"."""
    label = genre.label
    if mood and mood.lower() not in label.lower():
        label = f"{mood} {label}"
    return f"{label} in {key} {mode}"[:TITLE_MAX]


def _energy(genre: Genre, cues: PromptCues, focus: bool, intensity: str | None) -> float:
    if focus and intensity in _INTENSITY_ENERGY:
        return _INTENSITY_ENERGY[intensity]
    energy = genre.energy + sum(m.energy for m in cues.moods)
    if cues.tempo_shift is not None:
        energy += 0.12 * cues.tempo_shift
    if cues.structure & {"drop", "build"}:
        energy += 0.05
    energy = max(0.15, min(1.0, energy))
    return energy * 0.75 if focus else energy


def _tempo(genre: Genre, cues: PromptCues, draw: float) -> int:
    low, high = genre.tempo
    if cues.tempo_shift is not None:
        shift = cues.tempo_shift
    elif cues.moods:
        shift = sum(m.tempo for m in cues.moods) / len(cues.moods)
    else:
        shift = 0.0
    # The words say where in the range; the seed says where around that.
    target = 0.5 + 0.45 * shift
    position = max(0.0, min(1.0, target + (draw - 0.5) * 0.5))
    return round(low + position * (high - low))


def _mode(genre: Genre, cues: PromptCues, draw: float) -> Mode:
    lean = max(-0.95, min(0.95, sum(m.minor for m in cues.moods)))
    weighted: list[tuple[Mode, float]] = []
    for mode, weight in genre.modes:
        factor = 1.0 + lean if is_minor_like(mode) else 1.0 - lean
        weighted.append((mode, max(1e-6, weight * factor)))
    total = sum(w for _, w in weighted)
    point = draw * total
    for mode, weight in weighted:
        point -= weight
        if point <= 0:
            return mode
    return weighted[-1][0]


def _rotate(progression: tuple[str, ...], by: int) -> tuple[str, ...]:
    by %= max(1, len(progression))
    return progression[by:] + progression[:by]


def choose_progressions(
    genre: Genre, mode: Mode, rng: random.Random, carried: Carried | None = None
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """The main (verse) progression and the chorus/bridge ones."""
    pool = [tuple(p.split()) for p in genre.progressions_for(mode)]
    verse = rng.choice(pool)
    chorus_draw, bridge_draw = rng.random(), rng.random()
    if carried is not None and carried.progression is not None:
        verse = carried.progression
    others = [p for p in pool if p != verse]
    if genre.form == "blues":
        chorus = bridge = verse  # every chorus of a 12-bar blues is the same form
    else:
        if others and chorus_draw < 0.6:
            chorus = others[int(chorus_draw * len(others))]
        else:
            chorus = _rotate(verse, len(verse) // 2)
        rest = [p for p in others if p != chorus]
        bridge = rest[int(bridge_draw * len(rest))] if rest else _rotate(verse, 1)
    if carried is not None:
        chorus = carried.progressions.get("chorus", chorus)
        bridge = carried.progressions.get("bridge", bridge)
    return verse, (("chorus", chorus), ("bridge", bridge))


def make_plan(
    prompt: str,
    *,
    seed: int,
    duration_seconds: int,
    style_tags: Sequence[str] = (),
    focus: bool = False,
    title: str | None = None,
    continuation: Mapping[str, Any] | None = None,
    intensity: str | None = None,
) -> Plan:
    """Turn a prompt (plus style tags) into a plan; the seed settles everything left open.

    ``continuation`` is a previous track's recipe (its ``plan.as_dict()`` plus engine
    fields): its genre, tempo, key, mode and instruments are kept and its progression
    carries on; any field missing or unusable falls back to the prompt. ``intensity``
    (low/medium/high) sets the energy of focus music.
    """
    cues = parse_prompt(prompt, style_tags)
    carried = read_recipe(continuation)
    genre = (carried.genre if carried else None) or cues.genre or default_genre(focus)
    if intensity not in INTENSITIES:
        intensity = "medium" if focus else None
    rng = sub_rng(seed, f"plan/{genre.key}")
    # Draw everything in a fixed order whether or not the prompt overrides it, so naming
    # a key does not change which groove or melody a seed gives.
    tempo_draw, mode_draw, root_draw = rng.random(), rng.random(), rng.randrange(12)

    tempo = (carried.tempo_bpm if carried else None) or cues.tempo_bpm
    tempo = tempo or _tempo(genre, cues, tempo_draw)
    mode: Mode = (carried.mode if carried else None) or cues.mode or _mode(genre, cues, mode_draw)
    key = (carried.key if carried else None) or cues.key
    root, name = key if key is not None else (root_draw, key_name(root_draw, mode))

    progression, progressions = choose_progressions(genre, mode, rng, carried)
    final = genre.final_minor if is_minor_like(mode) else genre.final_major
    energy = _energy(genre, cues, focus, intensity)
    parts = choose_parts(genre, cues, rng, carried, focus=focus, intensity=intensity)

    variants = grooves_for(genre.groove)
    groove = rng.randrange(len(variants))
    # A groove named in the prompt ("trap", "two step", "boom bap", "half time") wins.
    named_groove = [i for i, g in enumerate(variants) if mentions(g.name, cues.text)]
    if cues.halftime:
        named_groove += [i for i, g in enumerate(variants) if g.halftime]
    if named_groove:
        groove = named_groove[0]
    density = 1.0
    for mood in cues.moods:
        density *= mood.density
    density = max(0.5, min(1.4, density))
    if focus:
        # Focus music stays out of the way: sparse melody, busier only at high intensity.
        density *= 0.6 * _INTENSITY_DENSITY.get(intensity or "medium", 1.0)
    room = genre.room + sum(m.room for m in cues.moods)
    genre = replace(genre, room=round(max(0.05, min(0.5, room)), 3))

    sections = plan_form(
        duration_seconds=duration_seconds,
        tempo_bpm=tempo,
        style=genre.form,
        requested=sorted(cues.structure),
        focus=focus,
        continuation=carried is not None,
    )
    mood_label = cues.title_word
    clean_title = " ".join((title or "").split())[:TITLE_MAX]
    return Plan(
        seed=seed,
        duration_seconds=duration_seconds,
        genre=genre,
        tempo_bpm=tempo,
        key_root=root,
        key_name=name,
        mode=mode,
        progression=progression,
        parts=parts,
        energy=energy,
        focus=focus,
        mood=mood_label,
        title=clean_title or make_title(genre, name, mode, mood_label),
        progressions=progressions,
        final_chord=final,
        sections=sections,
        moods=tuple(m.key for m in cues.moods),
        groove=groove,
        density=density,
        motif_seed=(carried.motif_seed if carried and carried.motif_seed is not None else seed),
        intensity=intensity,
        continued=carried is not None,
        ending="fade" if "fade" in cues.structure or focus else "cadence",
        cues=cues,
    )
