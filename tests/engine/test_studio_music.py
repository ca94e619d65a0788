"""Rendered audio has the musical properties the plan promises: tempo, drums or not, variety.

Renders go through ``StudioEngine`` (pinned to the bundled TimGM6mb bank) as short WAV
files, cached per session by the ``render`` fixture. The measurements are in
``audio_analysis.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musicstudio.engines.base import RenderRequest
from musicstudio.engines.studio import StudioEngine
from tests.engine.audio_analysis import estimate_tempo, percussive_onset_rate, tempo_matches
from tests.engine.studio_helpers import Rendered, RenderFn, run_render

SECONDS = 15


def _render(render: RenderFn, prompt: str, seed: int = 1) -> Rendered:
    out: Rendered = render(prompt, SECONDS, seed=seed, output_format="wav")
    return out


@pytest.mark.parametrize(
    "prompt",
    [
        "lo-fi hip hop beats",
        "boom bap hip hop",
        "deep house",
        "techno",
        "drum and bass",
        "synthwave",
        "upbeat pop",
        "rock",
        "jazz",
        "blues shuffle",
        "funk",
        "acoustic folk",
    ],
)
def test_tempo_heard_in_the_audio_matches_the_plan(render: RenderFn, prompt: str) -> None:
    out = _render(render, prompt)
    planned = out.result.recipe["tempo_bpm"]
    measured = estimate_tempo(out.audio, out.sample_rate)
    assert tempo_matches(measured, planned), (prompt, planned, measured)


@pytest.mark.parametrize("prompt", ["classical piano", "cinematic orchestral"])
def test_tempo_of_drumless_textures_up_to_an_octave(render: RenderFn, prompt: str) -> None:
    """Without a drummer, an even eighth-note texture (Alberti bass, string ostinato) is
    equally periodic at the beat and the half beat; listeners tap either, so double time
    counts as right here. Half or any other ratio does not."""
    out = _render(render, prompt)
    planned = out.result.recipe["tempo_bpm"]
    measured = estimate_tempo(out.audio, out.sample_rate)
    assert tempo_matches(measured, planned) or tempo_matches(measured, 2 * planned), (
        prompt,
        planned,
        measured,
    )


@pytest.mark.parametrize(
    "prompt", ["lo-fi hip hop beats", "deep house", "rock", "jazz", "upbeat pop"]
)
def test_no_drums_has_few_percussive_onsets(render: RenderFn, prompt: str) -> None:
    with_drums = _render(render, prompt)
    without = _render(render, f"{prompt} without drums")
    assert with_drums.result.recipe["drums"] is True
    assert without.result.recipe["drums"] is False
    busy = percussive_onset_rate(with_drums.audio, with_drums.sample_rate)
    quiet = percussive_onset_rate(without.audio, without.sample_rate)
    assert busy >= 2.0, (prompt, busy)
    assert quiet < 0.5 * busy, (prompt, busy, quiet)


def test_two_seeds_sound_different(render: RenderFn) -> None:
    a = _render(render, "upbeat pop", seed=1)
    b = _render(render, "upbeat pop", seed=2)
    assert a.audio.shape == b.audio.shape
    assert float(np.mean(np.abs(a.audio - b.audio))) > 0.01
    ra, rb = a.result.recipe, b.result.recipe
    differences = [ra[k] != rb[k] for k in ("progression", "key", "tempo_bpm", "groove")]
    assert sum(differences) >= 2
    # Each still keeps its own plan's tempo.
    assert tempo_matches(estimate_tempo(b.audio, b.sample_rate), rb["tempo_bpm"])


def test_continuation_renders_in_the_same_tempo_key_and_sound(
    bundled_engine: StudioEngine, render: RenderFn, tmp_path: Path
) -> None:
    first = _render(render, "synthwave", seed=3).result.recipe
    request = RenderRequest(
        job_id="continued",
        prompt="keep it going",
        duration_seconds=10,
        work_dir=tmp_path,
        seed=4,
        output_format="wav",
        continuation=first,
    )
    out = run_render(bundled_engine, request)
    second = out.result.recipe
    for key in ("genre", "tempo_bpm", "key", "mode"):
        assert second[key] == first[key], key
    assert [(i["role"], i["program"]) for i in second["instruments"]] == [
        (i["role"], i["program"]) for i in first["instruments"]
    ]
    start = first["next_progression_index"]
    assert second["progression"] == first["progression"][start:] + first["progression"][:start]
    assert tempo_matches(estimate_tempo(out.audio, out.sample_rate), first["tempo_bpm"])


def test_focus_audio_starts_and_ends_softly(render: RenderFn) -> None:
    out = render("lo-fi for deep work", 30, seed=2, output_format="wav", mode="focus")
    audio = out.audio
    rate = out.sample_rate

    def rms(start: float, end: float) -> float:
        part = audio[int(start * rate) : int(end * rate)]
        return float(np.sqrt(np.mean(np.square(part, dtype=np.float64))))

    body = rms(10.0, 20.0)
    assert rms(0.0, 1.0) < 0.6 * body
    assert rms(28.5, 30.0) < 0.6 * body
