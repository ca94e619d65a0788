"""A previous track's recipe -> what a continuation keeps (tempo, key, mode, instruments...).

Recipes come from storage and may be old, partial or tampered with, so every field is
checked on its own and anything unusable is simply left out: the prompt fills the gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from musicstudio.engines.studio.genres import GENRES_BY_KEY, Genre
from musicstudio.engines.studio.prompt import MAX_TEMPO, MIN_TEMPO
from musicstudio.engines.studio.theory import (
    Mode,
    as_mode,
    degree_symbol,
    is_chord_symbol,
    parse_chord,
    parse_key_name,
)

ROLES = ("melody", "chords", "bass", "pad", "drums")
_MAX_CHORDS = 16


@dataclass(frozen=True)
class Carried:
    """The usable parts of a previous recipe; None/empty where the recipe had nothing valid."""

    genre: Genre | None = None
    tempo_bpm: int | None = None
    key: tuple[int, str] | None = None
    mode: Mode | None = None
    programs: dict[str, int] = field(default_factory=dict)
    progression: tuple[str, ...] | None = None
    progressions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    motif_seed: int | None = None


def next_chord_index(progression: Sequence[str], form: str = "song") -> int:
    """Where a continuation picks the progression up.

    Pieces end on the tonic, so carry on with the chord that follows the tonic in the
    progression; a 12-bar blues always restarts its form; no tonic -> the next cycle.
    """
    if form == "blues" or not progression:
        return 0
    for index, symbol in enumerate(progression):
        if is_chord_symbol(symbol) and parse_chord(symbol).root == 0:
            return (index + 1) % len(progression)
    return 0


def _int(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not low <= value <= high:  # NaN or out of range
        return None
    return round(value)


def _mode(value: Any) -> Mode | None:
    if not isinstance(value, str):
        return None
    try:
        return as_mode(value.strip().lower())
    except ValueError:
        return None


def _progression(value: Any, mode: Mode | None) -> tuple[str, ...] | None:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= _MAX_CHORDS:
        return None
    if all(isinstance(v, str) and is_chord_symbol(v) for v in value):
        return tuple(v.strip() for v in value)
    # Version 1 recipes stored scale degrees of the major/minor scale.
    if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 7 for v in value):
        return tuple(degree_symbol(v, mode or "major") for v in value)
    return None


def _programs(value: Any) -> dict[str, int]:
    programs: dict[str, int] = {}
    if not isinstance(value, list | tuple):
        return programs
    for item in value:
        if not isinstance(item, Mapping):
            continue
        role = item.get("role")
        program = _int(item.get("program"), 0, 127)
        if role in ROLES and role not in programs and program is not None:
            programs[str(role)] = program
    return programs


def read_recipe(recipe: Mapping[str, Any] | None) -> Carried | None:
    """The fields of ``recipe`` a continuation can keep; None if there is no usable recipe."""
    if not isinstance(recipe, Mapping) or not recipe:
        return None
    genre = GENRES_BY_KEY.get(recipe["genre"]) if isinstance(recipe.get("genre"), str) else None
    tempo = _int(recipe.get("tempo_bpm"), MIN_TEMPO, MAX_TEMPO)
    mode = _mode(recipe.get("mode"))
    key: tuple[int, str] | None = None
    if isinstance(recipe.get("key"), str):
        key = parse_key_name(recipe["key"])
    progression = _progression(recipe.get("progression"), mode)
    if progression is not None:
        start = _int(recipe.get("next_progression_index"), 0, len(progression) - 1)
        if start is None:
            start = next_chord_index(progression, genre.form if genre else "song")
        progression = progression[start:] + progression[:start]
    progressions: dict[str, tuple[str, ...]] = {}
    stored = recipe.get("progressions")
    if isinstance(stored, Mapping):
        for name in ("chorus", "bridge"):
            parsed = _progression(stored.get(name), mode)
            if parsed is not None:
                progressions[name] = parsed
    carried = Carried(
        genre=genre,
        tempo_bpm=tempo,
        key=key,
        mode=mode,
        programs=_programs(recipe.get("instruments")),
        progression=progression,
        progressions=progressions,
        motif_seed=_int(recipe.get("motif_seed"), 0, 2**63),
    )
    if carried == Carried():
        return None
    return carried
