"""Prompt -> plan: genre, mood, tempo, key, instruments, drums, structure, continuation, focus.

No audio is rendered here; see ``test_studio_compose.py`` for the notes and
``test_studio_music.py`` for rendered audio.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from musicstudio.engines.studio.focus import plan_focus_segment
from musicstudio.engines.studio.genres import GENRES, GENRES_BY_KEY
from musicstudio.engines.studio.plan import TITLE_MAX, Plan, derive_seed, make_plan
from musicstudio.engines.studio.theory import is_minor_like, parse_progression


def plan(prompt: str, seed: int = 3, duration: int = 30, **kwargs: Any) -> Plan:
    return make_plan(prompt, seed=seed, duration_seconds=duration, **kwargs)


# -- genres ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "genre"),
    [
        ("lo-fi hip hop beats to study to", "lofi"),
        ("Chillhop with vinyl crackle", "lofi"),
        ("LOFI, rainy night", "lofi"),
        ("boom bap hip hop", "hiphop"),
        ("a hard trap beat with 808s", "hiphop"),
        ("slow ambient drone for meditation", "ambient"),
        ("atmospheric soundscape", "ambient"),
        ("deep house groove", "house"),
        ("piano house for the club", "house"),
        ("dark techno at night", "techno"),
        ("electronic dance music", "techno"),
        ("rolling drum and bass", "dnb"),
        ("Drum & Bass with a reese", "dnb"),
        ("liquid dnb", "dnb"),
        ("jungle breaks", "dnb"),
        ("synthwave night drive", "synthwave"),
        ("80s retrowave outrun", "synthwave"),
        ("catchy upbeat pop song", "pop"),
        ("punk rock with loud guitars", "rock"),
        ("indie rock anthem", "rock"),
        ("smoky late night jazz club", "jazz"),
        ("piano jazz trio", "jazz"),
        ("bebop with a tenor sax", "jazz"),
        ("12-bar blues shuffle", "blues"),
        ("delta blues with harmonica", "blues"),
        ("a classical sonata", "classical"),
        ("gentle piano piece", "classical"),
        ("solo piano nocturne", "classical"),
        ("epic orchestral trailer music", "cinematic"),
        ("film score for a fantasy movie", "cinematic"),
        ("acoustic folk song", "folk"),
        ("americana campfire tune", "folk"),
        ("funky slap bass groove", "funk"),
        ("jazzy lofi with rhodes", "lofi"),
        ("funky house", "house"),
        ("a lullaby", "classical"),
        ("medieval tavern music", "folk"),
        ("70s funk with brass", "funk"),
    ],
)
def test_genre_from_keywords(prompt: str, genre: str) -> None:
    assert plan(prompt).genre.key == genre


def test_every_genre_has_usable_defaults() -> None:
    assert len(GENRES) >= 15
    for genre in GENRES:
        low, high = genre.tempo
        assert 40 <= low < high <= 220, genre.key
        assert genre.modes and genre.progressions and genre.chords and genre.melody
        for _, progression in genre.progressions:
            parse_progression(progression)  # raises on a typo
        parse_progression(genre.cadence_major + " " + genre.cadence_minor)
        parse_progression(genre.final_major + " " + genre.final_minor)


def test_default_genre_and_focus_default() -> None:
    assert plan("something nice").genre.key == "pop"
    focus = plan("something nice", focus=True)
    assert focus.genre.key == "lofi"
    assert focus.focus


@pytest.mark.parametrize("prompt", ["", "   ", "qwzx flurble 12345 !!", "xylo-glorp vibes"])
def test_unknown_words_give_a_coherent_default(prompt: str) -> None:
    p = plan(prompt, duration=40)
    assert p.genre.key == "pop"
    low, high = p.genre.tempo
    assert low <= p.tempo_bpm <= high
    assert p.has_drums and p.part("melody") and p.part("bass") and p.part("chords")
    assert p.sections[-1].name == "end"


@pytest.mark.parametrize(
    ("tags", "genre"),
    [(("jazz",), "jazz"), (("Drum and Bass",), "dnb"), (("lo-fi", "chill"), "lofi"),
     (("synthwave",), "synthwave"), (("funk",), "funk"), (("blues",), "blues")],
)  # fmt: skip
def test_style_tags_choose_the_genre(tags: tuple[str, ...], genre: str) -> None:
    assert plan("something for the evening", style_tags=tags).genre.key == genre


def test_style_tags_outweigh_prompt_hints() -> None:
    # "guitar" hints at rock; the explicit tag wins.
    assert plan("a tune with guitar", style_tags=("folk",)).genre.key == "folk"


# -- tempo -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    ["lofi at 92 bpm", "lofi 92bpm", "Lo-Fi, 92 BPM, in D minor", "house, tempo 92",
     "jazz bpm: 92", "92 beats per minute rock"],
)  # fmt: skip
def test_explicit_tempo_wins(prompt: str) -> None:
    assert plan(prompt).tempo_bpm == 92


def test_tempo_is_clamped_and_defaults_to_genre_range() -> None:
    assert plan("pop at 400 bpm").tempo_bpm == 220
    assert plan("ambient at 20 bpm").tempo_bpm == 40
    for seed in range(20):
        p = plan("house", seed=seed)
        low, high = p.genre.tempo
        assert low <= p.tempo_bpm <= high


@pytest.mark.parametrize("genre", ["lofi", "rock", "jazz", "pop"])
def test_slow_and_fast_shift_within_the_range(genre: str) -> None:
    slow = [plan(f"slow {genre}", seed=s).tempo_bpm for s in range(12)]
    fast = [plan(f"fast driving {genre}", seed=s).tempo_bpm for s in range(12)]
    low, high = GENRES_BY_KEY[genre].tempo
    assert all(low <= t <= high for t in slow + fast)
    assert sum(slow) / len(slow) + 5 < sum(fast) / len(fast)


def test_drum_and_bass_tempo_is_drum_and_bass() -> None:
    assert all(170 <= plan("drum and bass", seed=s).tempo_bpm <= 176 for s in range(10))


# -- key and mode ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "key", "mode"),
    [
        ("jazz in D minor", "D", "minor"),
        ("a nocturne in E flat major", "Eb", "major"),
        ("pop song in F# minor", "F#", "minor"),
        ("Rock in Bb major", "Bb", "major"),
        ("lofi in a minor", "A", "minor"),
        ("funk in E dorian", "E", "dorian"),
        ("rock in G mixolydian", "G", "mixolydian"),
        ("house in Am", "A", "minor"),
        ("pop in the key of C sharp major", "C#", "major"),
    ],
)
def test_explicit_key(prompt: str, key: str, mode: str) -> None:
    p = plan(prompt, seed=11)
    assert (p.key_name, p.mode) == (key, mode)
    assert p.title.endswith(f"in {key} {mode}")


def test_bare_key_keeps_tonic_and_draws_mode() -> None:
    roots = {plan("pop in D", seed=s).key_root for s in range(8)}
    assert roots == {2}


def test_lowercase_article_is_not_a_key() -> None:
    roots = {plan("pop in a quiet room", seed=s).key_root for s in range(12)}
    assert len(roots) > 3


def test_bare_mode_word_sets_mode() -> None:
    for seed in range(8):
        assert plan("a minor-key pop song", seed=seed).mode == "minor"
        assert plan("a major key lofi tune", seed=seed).mode == "major"
        assert plan("dorian funk", seed=seed).mode == "dorian"


# -- moods -------------------------------------------------------------------------


def test_moods_lean_the_mode() -> None:
    sad = [is_minor_like(plan("sad pop", seed=s).mode) for s in range(20)]
    happy = [is_minor_like(plan("happy pop", seed=s).mode) for s in range(20)]
    assert sum(sad) >= 15
    assert sum(happy) <= 3


def test_moods_shift_energy_tempo_and_colour() -> None:
    calm = [plan("calm lofi", seed=s) for s in range(10)]
    hype = [plan("energetic lofi", seed=s) for s in range(10)]
    assert max(p.energy for p in calm) < min(p.energy for p in hype)
    assert sum(p.tempo_bpm for p in calm) < sum(p.tempo_bpm for p in hype)
    dreamy = plan("dreamy pop")
    assert dreamy.genre.room > GENRES_BY_KEY["pop"].room
    assert "dreamy" in dreamy.moods
    epic_rock = plan("epic rock")  # rock has no pad; "epic" brings strings or brass
    assert epic_rock.part("pad") is not None


def test_mood_and_scene_words_title() -> None:
    assert plan("rainy lo-fi in D minor", seed=1).title == "Rainy Lo-fi Hip Hop in D minor"
    assert plan("melancholic jazz in C minor").title == "Sad Jazz in C minor"


# -- instruments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "role", "program"),
    [
        ("pop with saxophone", "melody", 66),
        ("pop with strings", "pad", 48),
        ("lofi with a flute", "melody", 73),
        ("ambient with bells", "melody", 10),
        ("rock with an organ", "chords", 16),
        ("jazz with electric piano", "chords", 4),
        ("house with a synth bass", "bass", 38),
        ("hip hop with 808s", "bass", 38),
        ("folk with a violin", "melody", 40),
        ("cinematic with a choir", "pad", 52),
        ("pop with pads", "pad", 89),
        ("blues with harmonica", "melody", 22),
        ("lofi with acoustic guitar", "chords", 25),
        ("jazzy lofi with rhodes", "chords", 4),
        ("sad piano ballad", "melody", 0),
        ("happy ukulele tune", "chords", 24),
    ],
)
def test_instrument_words_set_programs(prompt: str, role: str, program: int) -> None:
    part = plan(prompt).part(role)
    assert part is not None and part.program == program


def test_instrument_words_keep_the_family() -> None:
    # Same family is kept: rock "guitar" stays overdriven/distorted.
    rock = plan("rock with guitar", seed=4).part("chords")
    assert rock is not None and rock.program in (29, 30)


@pytest.mark.parametrize(
    ("prompt", "groove"),
    [("trap beat", "trap"), ("two step drum and bass", "two-step"), ("half-time lofi", "half-time"),
     ("boom bap hip hop", "boom-bap"), ("drum and bass with a breakdown", None)],
)  # fmt: skip
def test_named_grooves(prompt: str, groove: str | None) -> None:
    chosen = {plan(prompt, seed=s).as_dict()["groove"] for s in range(6)}
    if groove is None:
        assert len(chosen) > 1  # "breakdown" does not name the "break" groove: the seed picks
    else:
        assert chosen == {groove}


@pytest.mark.parametrize(
    ("prompt", "kit"),
    [("hip hop with 808 drums", 25), ("jazz with brushes", 40), ("lofi, drum machine", 24)],
)
def test_kit_words_choose_the_drum_kit(prompt: str, kit: int) -> None:
    drums = plan(prompt).part("drums")
    assert drums is not None and drums.program == kit


def test_piano_and_strings_both_play() -> None:
    p = plan("piano and strings")
    chords, pad = p.part("chords"), p.part("pad")
    assert chords is not None and chords.program == 0
    assert pad is not None and pad.program == 48


# -- drums -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    ["rock with no drums", "house without drums", "drumless lofi", "pop, no percussion",
     "jazz without any drums", "techno, no beat", "funk w/o drums", "beatless synthwave"],
)  # fmt: skip
def test_no_drums_removes_the_drum_part(prompt: str) -> None:
    p = plan(prompt)
    assert not p.has_drums
    assert p.part("drums") is None
    assert p.as_dict()["drums"] is False


def test_drums_by_default_and_on_request() -> None:
    assert plan("rock").has_drums
    assert not plan("ambient").has_drums
    assert not plan("solo piano").has_drums
    assert plan("ambient with drums").has_drums
    assert plan("ambient with soft percussion").has_drums
    assert plan("drum and bass").has_drums


# -- structure ---------------------------------------------------------------------


def _names(p: Plan) -> list[str]:
    return [s.name for s in p.sections]


def test_structure_words_shape_the_form() -> None:
    club = _names(plan("pop with a big build and a drop", duration=90))
    assert "build" in club and "drop" in club
    assert club.index("build") < club.index("drop")
    edges = _names(plan("jazz with an intro and an outro", duration=40))
    assert edges[0] == "intro" and edges[-2] == "outro"
    assert "breakdown" in _names(plan("house with a breakdown", duration=90))
    assert "bridge" in _names(plan("pop song with a bridge", duration=60))


def test_song_form_grows_with_duration() -> None:
    short = _names(plan("pop", duration=8))
    assert short == ["phrase", "end"]
    minute = _names(plan("pop", duration=60))
    assert {"verse", "chorus"} <= set(minute)
    long = _names(plan("pop", duration=180))
    assert long[0] == "intro" and long[-2] == "outro" and long.count("chorus") >= 3


def test_club_genres_use_builds_and_drops() -> None:
    names = _names(plan("techno", duration=120))
    assert "drop" in names and "build" in names and "breakdown" in names


def test_sections_cover_the_bars_without_gaps() -> None:
    for prompt in ("pop", "blues", "house", "ambient", "jazz with an intro"):
        for duration in (3, 11, 30, 95, 240):
            sections = plan(prompt, duration=duration).sections
            assert sections[-1].name == "end"
            bar = 0
            for s in sections:
                assert s.start_bar == bar and s.bars >= 1
                bar += s.bars


# -- recipe --------------------------------------------------------------------------


def test_as_dict_has_the_resolved_plan() -> None:
    data = plan("sad lofi with a flute in D minor at 80 bpm", seed=5).as_dict()
    json.dumps(data)  # JSON-ready
    for key in (
        "genre",
        "mood",
        "moods",
        "tempo_bpm",
        "key",
        "mode",
        "instruments",
        "sections",
        "seed",
        "progression",
        "progressions",
        "final_chord",
        "next_progression_index",
        "drums",
        "energy",
        "groove",
        "swing",
        "motif_seed",
    ):
        assert key in data, key  # fmt: skip
    assert data["genre"] == "lofi" and data["tempo_bpm"] == 80
    assert data["key"] == "D" and data["mode"] == "minor"
    assert "sad" in data["moods"]
    assert any(i["role"] == "melody" and i["program"] == 73 for i in data["instruments"])
    assert [s["name"] for s in data["sections"]][-1] == "end"


def test_titles() -> None:
    assert plan("x", seed=1, title="  My   Song  ").title == "My Song"
    assert len(plan("x", seed=1, title="y" * 200).title) == TITLE_MAX


# -- determinism -------------------------------------------------------------------


def test_same_inputs_same_plan_different_seeds_differ() -> None:
    a = plan("lofi hip hop", seed=42, duration=60)
    assert a == plan("lofi hip hop", seed=42, duration=60)
    others = [plan("lofi hip hop", seed=s, duration=60) for s in range(43, 49)]
    assert any(o.progression != a.progression for o in others)
    assert any(o.key_root != a.key_root for o in others)
    assert any(o.groove != a.groove for o in others)


def test_derive_seed_is_stable_and_spread() -> None:
    assert derive_seed("job-1") == derive_seed("job-1")
    assert derive_seed("job-1") != derive_seed("job-2")
    assert 0 <= derive_seed("anything") < 2**31
    # sha256-based, so independent of PYTHONHASHSEED: pin one value.
    assert (
        derive_seed("01HZX")
        == int.from_bytes(__import__("hashlib").sha256(b"01HZX").digest()[:4], "big") & 0x7FFFFFFF
    )


# -- continuation ------------------------------------------------------------------


def _recipe(p: Plan) -> dict[str, Any]:
    # What the engine stores: the plan plus engine fields.
    return {"engine": "studio", "engine_version": "2.0.0", **p.as_dict(), "note_counts": {}}


def test_continuation_keeps_tempo_key_mode_and_instruments() -> None:
    first = plan("dreamy synthwave with a saxophone", seed=7, duration=60)
    second = plan("keep going, more energy", seed=99, duration=60, continuation=_recipe(first))
    assert second.continued
    assert (second.tempo_bpm, second.key_name, second.mode) == (
        first.tempo_bpm, first.key_name, first.mode
    )  # fmt: skip
    assert [(p.role, p.program) for p in second.parts] == [(p.role, p.program) for p in first.parts]
    assert second.genre.key == first.genre.key
    assert second.motif_seed == first.motif_seed  # its themes return


def test_continuation_carries_the_progression_on() -> None:
    first = plan("pop in C major", seed=3, duration=40)
    recipe = _recipe(first)
    second = plan("pop", seed=4, duration=40, continuation=recipe)
    start = recipe["next_progression_index"]
    progression = list(first.progression)
    assert list(second.progression) == progression[start:] + progression[:start]
    # The first piece ended on its tonic; the next one starts on the chord after it.
    tonic = next(i for i, c in enumerate(parse_progression(progression)) if c.root == 0)
    assert second.progression[0] == progression[(tonic + 1) % len(progression)]
    # No intro: a continuation picks up where the previous track left off.
    assert second.sections[0].name != "intro"


def test_continuation_of_a_continuation_keeps_moving() -> None:
    first = plan("lofi", seed=1, duration=30)
    second = plan("lofi", seed=2, duration=30, continuation=_recipe(first))
    third = plan("lofi", seed=3, duration=30, continuation=_recipe(second))
    assert third.tempo_bpm == first.tempo_bpm and third.key_name == first.key_name
    assert sorted(third.progression) == sorted(first.progression)


@pytest.mark.parametrize(
    "recipe",
    [
        {},
        {"genre": 5, "tempo_bpm": "fast", "key": None, "mode": "ultra"},
        {"tempo_bpm": float("nan"), "progression": "I V", "instruments": "piano"},
        {"instruments": [{"role": "lead", "program": 900}, "x", None], "progression": [1.5]},
        {"progression": ["I", "Q7"], "next_progression_index": 99, "key": "H#"},
        {"tempo_bpm": True, "key": "", "motif_seed": -4},
    ],
)
def test_garbage_continuation_falls_back_to_the_prompt(recipe: dict[str, Any]) -> None:
    fresh = plan("jazz in D minor at 120 bpm", seed=5)
    p = plan("jazz in D minor at 120 bpm", seed=5, continuation=recipe)
    assert (p.genre.key, p.tempo_bpm, p.key_name, p.mode) == ("jazz", 120, "D", "minor")
    assert [x.program for x in p.parts] == [x.program for x in fresh.parts]


def test_partial_continuation_keeps_what_it_can() -> None:
    p = plan(
        "rock at 100 bpm", seed=5, continuation={"tempo_bpm": 133, "key": "F#", "mode": "minor"}
    )
    assert (p.tempo_bpm, p.key_name, p.mode, p.genre.key) == (133, "F#", "minor", "rock")


def test_version_one_recipes_with_degree_progressions() -> None:
    old = {"genre": "pop", "tempo_bpm": 110, "key": "G", "mode": "major",
           "progression": [0, 4, 5, 3], "instruments": [
               {"role": "melody", "program": 80}, {"role": "chords", "program": 0},
               {"role": "bass", "program": 33}, {"role": "drums", "program": 0}]}  # fmt: skip
    p = plan("pop", seed=8, continuation=old)
    assert p.tempo_bpm == 110 and p.key_name == "G"
    assert sorted(p.progression) == sorted(("I", "V", "vi", "IV"))
    assert [(x.role, x.program) for x in p.parts] == [
        ("melody", 80), ("chords", 0), ("bass", 33), ("drums", 0)
    ]  # fmt: skip


# -- focus -------------------------------------------------------------------------


def test_focus_segments_share_key_and_tempo() -> None:
    segments = [plan_focus_segment(1234, i, goal_prompt="deep work, lo-fi") for i in range(5)]
    assert len({(s.tempo_bpm, s.key_name, s.mode) for s in segments}) == 1
    assert len({s.seed for s in segments}) == 5
    assert all(s.focus and s.segment_index == i for i, s in enumerate(segments))
    assert segments[2] == plan_focus_segment(1234, 2, goal_prompt="deep work, lo-fi")


def test_focus_divergence_controls_change() -> None:
    calm = [plan_focus_segment(9, i, goal_prompt="study", divergence=0.0) for i in range(6)]
    assert len({s.progression for s in calm}) == 1
    assert len({tuple(p.program for p in s.parts) for s in calm}) == 1
    wild = [plan_focus_segment(9, i, goal_prompt="study", divergence=1.0) for i in range(6)]
    assert len({(s.progression, tuple(p.program for p in s.parts)) for s in wild}) > 2


def test_focus_segment_pins_and_intensity() -> None:
    s = plan_focus_segment(5, 3, goal_prompt="ambient", tempo=66, key="Eb", mode="dorian")
    assert (s.tempo_bpm, s.key_name, s.mode) == (66, "Eb", "dorian")
    assert not plan_focus_segment(5, 0, goal_prompt="lofi", intensity="low").has_drums
    low = plan_focus_segment(5, 0, goal_prompt="lofi", intensity="low")
    high = plan_focus_segment(5, 0, goal_prompt="lofi", intensity="high")
    assert low.energy < high.energy and low.density < high.density
    junk = plan_focus_segment(5, 0, tempo=9999, key="nope", mode="weird", intensity="max")
    assert junk.genre.key == "lofi" and junk.intensity == "medium"


def test_long_focus_piece_is_made_of_two_minute_segments() -> None:
    p = plan("calm focus music", duration=600, focus=True)
    segments = {s.segment for s in p.sections}
    assert len(segments) == 5
    seconds_per_bar = 4 * 60 / p.tempo_bpm
    for index in segments:
        bars = sum(s.bars for s in p.sections if s.segment == index and s.name != "end")
        assert 100 <= bars * seconds_per_bar <= 140
    for index in segments:
        names = [s.name for s in p.sections if s.segment == index and s.name != "end"]
        assert names[0] == "intro" and names[-1] == "outro"
