"""Focus sessions: an endless stream of segments in one key and tempo that crossfade cleanly.

A session is identified by its seed. Segment ``index`` of a session is a complete plan of
its own (about two minutes), so segments can be rendered independently, in any order, by
different workers, and still belong together: the genre, tempo, key, mode and core
instruments come from the session; ``divergence`` decides how much each segment departs
from the session's first one (progression, instruments, groove, themes). Every segment
starts and ends softly (``compose`` fades velocities in and out, the drums keep only
quiet timekeepers in the first and last bars), so a player can overlap consecutive
segments by a few seconds without a bump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from musicstudio.engines.studio.form import plan_form
from musicstudio.engines.studio.grooves import grooves_for
from musicstudio.engines.studio.plan import (
    INTENSITIES,
    MAX_TEMPO,
    MIN_TEMPO,
    TITLE_MAX,
    Plan,
    choose_progressions,
    derive_seed,
    make_plan,
    sub_rng,
)
from musicstudio.engines.studio.prompt_instruments import make_part
from musicstudio.engines.studio.theory import Mode, as_mode, key_name, parse_key_name

SEGMENT_SECONDS = 120
# Crossfade a player can use between consecutive segments (their soft edges are longer).
CROSSFADE_SECONDS = 4.0


def segment_seed(session_seed: int, index: int) -> int:
    """The seed of one segment: stable for (session, index), different across indices."""
    return derive_seed(f"focus-segment/{session_seed}/{index}")


def _mode_override(mode: str | None) -> Mode | None:
    if mode is None:
        return None
    try:
        return as_mode(mode.strip().lower())
    except ValueError:
        return None


def plan_focus_segment(
    session_seed: int,
    index: int,
    *,
    goal_prompt: str = "",
    duration_seconds: int = SEGMENT_SECONDS,
    tempo: int | None = None,
    key: str | None = None,
    mode: str | None = None,
    intensity: str = "medium",
    divergence: float = 0.3,
    style_tags: Sequence[str] = (),
) -> Plan:
    """The plan of segment ``index`` (0, 1, 2...) of the focus session ``session_seed``.

    ``goal_prompt`` and ``style_tags`` describe the session ("deep work, lo-fi, rainy");
    ``tempo``, ``key`` ("F#", "Eb") and ``mode`` ("minor", "dorian"...) pin those choices
    (invalid values are ignored); ``intensity`` is low (no drums, sparse), medium or high
    (a fuller groove, still soft at the edges); ``divergence`` from 0 to 1 is the chance
    that a segment changes its progression, groove, themes and (at 0.6x the rate) each
    instrument. Every index gives the same key and tempo.
    """
    if intensity not in INTENSITIES:
        intensity = "medium"
    spread = max(0.0, min(1.0, float(divergence)))
    index = max(0, int(index))
    base = make_plan(
        goal_prompt,
        seed=session_seed,
        duration_seconds=duration_seconds,
        style_tags=style_tags,
        focus=True,
        intensity=intensity,
    )
    genre = base.genre
    if tempo is not None and MIN_TEMPO <= tempo <= MAX_TEMPO:
        base = replace(base, tempo_bpm=int(tempo))
    pinned_mode = _mode_override(mode)
    pinned_key = parse_key_name(key) if isinstance(key, str) else None
    if pinned_mode is not None or pinned_key is not None:
        new_mode = pinned_mode or base.mode
        root, name = pinned_key or (base.key_root, key_name(base.key_root, new_mode))
        progression, progressions = base.progression, base.progressions
        if new_mode != base.mode:
            progression, progressions = choose_progressions(
                genre, new_mode, sub_rng(session_seed, "focus/mode")
            )
        base = replace(
            base,
            mode=new_mode,
            key_root=root,
            key_name=name,
            progression=progression,
            progressions=progressions,
        )

    seed = segment_seed(session_seed, index)
    rng = sub_rng(session_seed, f"focus/{index}")
    # Fixed number of draws whatever the divergence, so raising it only flips decisions.
    new_harmony, new_groove, new_themes = rng.random(), rng.random(), rng.random()
    swaps = [(role, rng.random(), rng.random()) for role in ("melody", "chords", "pad")]
    fresh = index > 0
    progression, progressions = base.progression, base.progressions
    if fresh and new_harmony < spread:
        progression, progressions = choose_progressions(genre, base.mode, sub_rng(seed, "harmony"))
    groove = base.groove
    if fresh and new_groove < spread:
        groove = sub_rng(seed, "groove").randrange(len(grooves_for(genre.groove)))
    motif_seed = seed if fresh and new_themes < spread else base.motif_seed
    parts = list(base.parts)
    options = {"melody": genre.melody, "chords": genre.chords, "pad": genre.pad}
    for role, draw, pick in swaps:
        current = base.part(role)
        if not fresh or current is None or not options[role] or draw >= 0.6 * spread:
            continue
        program = options[role][int(pick * len(options[role]))]
        parts[parts.index(current)] = make_part(role, program)
    sections = plan_form(
        duration_seconds=duration_seconds,
        tempo_bpm=base.tempo_bpm,
        style=genre.form,
        focus=True,
    )
    title = f"Focus: {genre.label} in {base.key_name} {base.mode} ({index + 1})"[:TITLE_MAX]
    return replace(
        base,
        seed=seed,
        duration_seconds=duration_seconds,
        progression=progression,
        progressions=progressions,
        parts=tuple(parts),
        groove=groove,
        motif_seed=motif_seed,
        sections=sections,
        title=title,
        segment_index=index,
        session_seed=session_seed,
        divergence=spread,
    )
