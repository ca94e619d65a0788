"""Plan -> notes: form, harmony, grooves, bass lines, melody, dynamics, endings, focus edges.

Positions are checked in beats with a tolerance for the seeded humanisation (a few ms of
timing jitter, a lazy lo-fi snare). No audio is rendered here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from statistics import mean
from typing import Any

import numpy as np
import pytest

from musicstudio.engines.studio.compose import Arrangement, NoteEvent, compose
from musicstudio.engines.studio.focus import plan_focus_segment
from musicstudio.engines.studio.grooves import CRASH, KICK, KICK2, SNARE
from musicstudio.engines.studio.harmony import Bar
from musicstudio.engines.studio.humanise import on_velocity_grid, swing_beat
from musicstudio.engines.studio.mix import LevelRide
from musicstudio.engines.studio.plan import Plan, make_plan
from musicstudio.engines.studio.theory import parse_chord, scale_for, voice_chord

TOMS = {41, 43, 45, 47, 48, 50}


def arrange(prompt: str, seed: int = 5, duration: int = 60, **kwargs: Any) -> Arrangement:
    return compose(make_plan(prompt, seed=seed, duration_seconds=duration, **kwargs))


def role_events(a: Arrangement, role: str) -> list[NoteEvent]:
    part = a.plan.part(role)
    assert part is not None, role
    return a.events_on(part.channel)


def beat_of(a: Arrangement, event: NoteEvent) -> float:
    return event.start * a.plan.tempo_bpm / 60.0


def in_bar(a: Arrangement, events: Iterable[NoteEvent], bar: Bar) -> list[tuple[float, NoteEvent]]:
    """(position in beats from the bar start, event) for events starting in ``bar``."""
    out = []
    for e in events:
        pos = beat_of(a, e) - bar.start
        if -0.1 <= pos < 3.9:
            out.append((pos, e))
    return out


def hits_at(a: Arrangement, bar: Bar, key: int, position: float, tol: float = 0.08) -> bool:
    return any(
        e.key == key and abs(pos - position) <= tol
        for pos, e in in_bar(a, role_events(a, "drums"), bar)
    )


def plain_bars(a: Arrangement, *sections: str) -> list[Bar]:
    """Bars of the named sections with no fill or transition (not a section's last bar)."""
    return [
        b
        for b in a.bars
        if b.section.name in sections and not b.is_section_end and b.position % 8 != 7
    ]


# -- well-formed and exact ------------------------------------------------------------

GENRE_PROMPTS = [
    "lofi", "hip hop", "ambient", "house", "techno", "drum and bass", "synthwave", "pop",
    "rock", "jazz", "blues", "classical piano", "cinematic", "folk", "funk",
]  # fmt: skip


@pytest.mark.parametrize("duration", [1, 5, 12, 30, 120])
def test_events_are_well_formed(duration: int) -> None:
    for prompt in GENRE_PROMPTS:
        a = arrange(prompt, seed=duration, duration=duration)
        assert a.events, prompt
        assert a.duration_seconds == duration
        channels = {p.channel for p in a.plan.parts}
        for e in a.events:
            assert 0 <= e.start < duration
            assert e.start < e.end <= duration
            assert 1 <= e.velocity <= 127
            assert 0 <= e.key <= 127
            assert e.channel in channels
        starts = [e.start for e in a.events]
        assert starts == sorted(starts)


@pytest.mark.parametrize("prompt", GENRE_PROMPTS)
def test_piece_ends_on_a_held_final_chord(prompt: str) -> None:
    for duration in (6, 45):
        a = arrange(prompt, duration=duration)
        last = a.bars[-1]
        assert last.is_end and last.chord.symbol == a.plan.final_chord
        assert parse_chord(a.plan.final_chord).root == 0  # the tonic
        end_start = last.start * 60 / a.plan.tempo_bpm
        ringing = [e for e in a.events if e.start >= end_start - 0.05]
        assert ringing, prompt
        # The final chord rings to (almost) the end: the master fades it out.
        assert max(e.end for e in ringing) >= duration - 0.25


def test_short_clip_is_one_phrase_with_a_cadence() -> None:
    for prompt in ("pop", "jazz", "rock", "lofi"):
        a = arrange(prompt, duration=8)
        assert [s.name for s in a.plan.sections] == ["phrase", "end"]
        before_end = a.bars[-2]
        cadence = parse_chord(before_end.changes[-1][1].symbol)
        assert cadence.root != 0  # a dominant/subdominant before the tonic, not tonic-tonic


def test_cadence_closes_longer_pieces() -> None:
    a = arrange("pop in C major", duration=60)
    assert a.chord_symbols()[-3:] == ["IV", "V", "I"]
    jazz = arrange("jazz in F major", duration=60)
    assert jazz.chord_symbols()[-3:] == ["ii7", "V7", "Imaj7"]


# -- harmony ---------------------------------------------------------------------------


def test_sections_play_their_progressions() -> None:
    a = arrange("pop", duration=90)
    plan = a.plan
    for bar in a.bars:
        if bar.section.name in ("verse", "chorus") and not bar.is_section_end:
            progression = plan.progression_named(bar.section.harmony)
            assert bar.chord.symbol == progression[bar.position % len(progression)]


def test_intro_leads_into_the_verse() -> None:
    a = arrange("pop", duration=60)
    intro = [b for b in a.bars if b.section.name == "intro"]
    assert intro
    progression = a.plan.progression
    assert intro[-1].chord.symbol == progression[-1]
    first_verse = next(b for b in a.bars if b.section.name == "verse")
    assert first_verse.chord.symbol == progression[0]


def test_blues_is_a_twelve_bar_form() -> None:
    a = arrange("blues in A", duration=90)
    verse = [b for b in a.bars if b.section.name == "verse"]
    assert len(verse) >= 12
    symbols = [b.chord.symbol for b in verse[:12]]
    assert symbols[0] == "I7" and symbols[4] == "IV7" and symbols[8] == "V7"
    assert all(parse_chord(s).seventh == 10 for s in symbols)  # dominant sevenths


def test_voice_leading_keeps_chords_close() -> None:
    first = voice_chord([0, 4, 7], 60)
    second = voice_chord([5, 9, 0], 60, first)
    assert sum(abs(a - b) for a, b in zip(first, sorted(second), strict=True)) <= 5
    a = arrange("pop", duration=60)
    chords = role_events(a, "chords")
    by_bar: dict[int, list[int]] = {}
    for pos, e in ((beat_of(a, e), e) for e in chords):
        by_bar.setdefault(int(pos // 4), []).append(e.key)
    centres = [mean(keys) for _, keys in sorted(by_bar.items())]
    assert max(abs(x - y) for x, y in itertools.pairwise(centres)) <= 7


# -- grooves ---------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["house", "techno"])
def test_four_on_the_floor(prompt: str) -> None:
    a = arrange(prompt, duration=90)
    bars = plain_bars(a, "drop")
    assert bars
    for bar in bars:
        for beat in range(4):
            assert hits_at(a, bar, KICK, beat), (bar.index, beat)


def test_drum_and_bass_breakbeat() -> None:
    a = arrange("drum and bass", duration=60)
    assert 170 <= a.plan.tempo_bpm <= 176
    bars = plain_bars(a, "drop")
    assert bars
    for bar in bars:
        assert hits_at(a, bar, SNARE, 1) and hits_at(a, bar, SNARE, 3)
        assert hits_at(a, bar, KICK, 0)
        assert not hits_at(a, bar, KICK, 1)  # not four-on-the-floor


@pytest.mark.parametrize("prompt", ["rock", "pop", "funk", "hip hop"])
def test_backbeat(prompt: str) -> None:
    a = arrange(prompt, duration=60)
    drums = a.plan.part("drums")
    assert drums is not None
    bars = plain_bars(a, "verse", "chorus")
    assert bars
    for bar in bars:
        backbeat = {e.key for p, e in in_bar(a, role_events(a, "drums"), bar) if abs(p - 1) < 0.1}
        assert backbeat & {SNARE, 39}, bar.index


def test_lofi_is_swung_and_laid_back() -> None:
    a = arrange("lofi", duration=40)
    assert a.plan.swing > 0.5
    hats = [beat_of(a, e) % 0.5 for e in role_events(a, "drums") if e.key == 42]
    off = [x for x in hats if 0.15 < x < 0.45]
    assert off and mean(off) > 0.28  # 16th off-beats land late (swung)
    snares = [beat_of(a, e) % 1 for e in role_events(a, "drums") if e.key == SNARE]
    assert mean(x for x in snares if x < 0.5) > 0.005  # behind the beat


def test_swing_warp_keeps_order() -> None:
    positions = [swing_beat(b / 4, 0.65, 0.5) for b in range(9)]
    assert positions == sorted(positions)
    assert swing_beat(0.5, 0.65, 0.5) == pytest.approx(0.65)
    assert swing_beat(1.0, 0.65, 0.5) == 1.0


def test_jazz_rides_and_walks() -> None:
    a = arrange("jazz", duration=60)
    drums, bass = role_events(a, "drums"), role_events(a, "bass")
    for bar in plain_bars(a, "verse", "chorus"):
        assert any(e.key == 51 for _, e in in_bar(a, drums, bar))  # ride cymbal
        quarters = sorted(round(p) for p, _ in in_bar(a, bass, bar))
        assert quarters == [0, 1, 2, 3]  # a walking bass: four quarter notes


def test_blues_shuffles_with_a_boogie_bass() -> None:
    a = arrange("blues", duration=60)
    assert a.plan.swing >= 0.65
    bar = plain_bars(a, "verse")[0]
    notes = [p for p, _ in in_bar(a, role_events(a, "bass"), bar)]
    assert len(notes) == 8
    offbeats = [p % 1 for p in notes if p % 1 > 0.3]
    assert offbeats and mean(offbeats) > 0.6  # shuffled eighths


def test_funk_has_sixteenth_syncopation_and_ghost_notes() -> None:
    a = arrange("funk", duration=40)
    drums = role_events(a, "drums")
    assert any(e.key == SNARE and e.velocity < 60 for e in drums)  # ghost notes
    bass = [beat_of(a, e) % 0.5 for e in role_events(a, "bass")]
    assert any(0.2 < x < 0.3 for x in bass)  # on a 16th between eighths


def test_fills_mark_section_ends() -> None:
    a = arrange("rock", duration=60)
    drums = role_events(a, "drums")
    transitions = [b for b in a.bars if b.is_section_end and b.next_section == "chorus"]
    assert transitions
    for bar in transitions:
        late = [e for p, e in in_bar(a, drums, bar) if p >= 2.0]
        toms_or_roll = [e for e in late if e.key in TOMS] or [e for e in late if e.key == SNARE]
        assert len(toms_or_roll) >= 2
    chorus_starts = [b for b in a.bars if b.section.name == "chorus" and b.position == 0]
    assert all(hits_at(a, b, CRASH, 0) for b in chorus_starts)


# -- dynamics and texture ------------------------------------------------------------


def test_dynamics_follow_the_form() -> None:
    a = arrange("pop", duration=90)

    def level(name: str) -> float:
        bars = [b for b in a.bars if b.section.name == name]
        return mean(e.velocity for b in bars for _, e in in_bar(a, a.events, b))

    assert level("intro") < level("verse") < level("chorus")


def test_chords_and_pad_ride_their_level_with_the_form() -> None:
    a = arrange("pop", duration=90)
    for role in ("chords", "pad"):
        part = a.plan.part(role)
        assert part is not None
        lane = a.level_lane(part.channel)
        assert lane and lane[0][0] == 0.0
        assert all(t0 <= t1 for (t0, _), (t1, _) in itertools.pairwise(lane))

        def gain_at(seconds: float, lane: tuple[tuple[float, float], ...] = lane) -> float:
            return [g for t, g in lane if t <= seconds][-1]

        def level(name: str) -> float:
            bars = [b for b in a.bars if b.section.name == name]
            return mean(gain_at(b.start * 60 / a.plan.tempo_bpm + 0.01) for b in bars)

        if role == "chords":
            assert level("intro") < level("verse") < level("chorus")
        else:  # the pad sits the verse out
            assert level("intro") < level("chorus")
    chords = role_events(a, "chords")
    # Velocity no longer carries the sections: a chorus chord is struck like a verse chord.
    verse = {
        e.velocity for b in a.bars if b.section.name == "verse" for _, e in in_bar(a, chords, b)
    }
    chorus = {
        e.velocity for b in a.bars if b.section.name == "chorus" for _, e in in_bar(a, chords, b)
    }
    assert verse & chorus


def test_level_ride_scales_blocks_like_the_whole_curve() -> None:
    lane = ((0.0, 0.5), (1.0, 0.5), (1.25, 1.0), (3.0, 1.0), (3.25, 0.75))
    rate = 1000
    ride = LevelRide(lane, rate)
    signal = np.ones((4000, 2), dtype=np.float32)
    for start in range(0, 4000, 300):
        ride.apply(signal[start : start + 300], start)
    expected = np.interp(np.arange(4000), [t * rate for t, _ in lane], [g for _, g in lane])
    assert np.allclose(signal[:, 0], expected, atol=1e-6)
    assert np.array_equal(signal[:, 0], signal[:, 1])
    untouched = np.ones((10, 2), dtype=np.float32)
    LevelRide((), rate).apply(untouched, 0)
    assert np.array_equal(untouched, np.ones((10, 2), dtype=np.float32))


def test_breakdown_is_thin() -> None:
    a = arrange("house with a breakdown", duration=90)
    drums, bass = role_events(a, "drums"), role_events(a, "bass")
    breakdown = [b for b in a.bars if b.section.name == "breakdown"]
    assert breakdown
    for bar in breakdown:
        assert not any(e.key in (KICK, KICK2) for _, e in in_bar(a, drums, bar))
        assert not in_bar(a, bass, bar)


def test_humanised_timing_and_velocity() -> None:
    a = arrange("pop", duration=30)
    kicks = [e for e in role_events(a, "drums") if e.key == KICK]
    offsets = [beat_of(a, e) % 0.25 for e in kicks]
    off_grid = [min(o, 0.25 - o) * 60 / a.plan.tempo_bpm for o in offsets]
    assert max(off_grid) < 0.012  # never sloppy
    assert sum(1 for x in off_grid if x > 0.0005) > len(off_grid) // 2  # but not a machine
    assert len({e.velocity for e in kicks}) > 3


# -- bass and melody -----------------------------------------------------------------


def test_bass_plays_chord_roots_on_downbeats() -> None:
    for prompt in ("pop in C major no drums", "rock", "house", "lofi"):
        a = arrange(prompt, duration=40)
        bass = role_events(a, "bass")
        checked = 0
        for bar in a.bars:
            if bar.section.name in ("intro", "breakdown", "end"):
                continue
            first = [e for p, e in in_bar(a, bass, bar) if abs(p) < 0.1]
            root = (a.plan.key_root + bar.chord.root) % 12
            if first:
                checked += 1
                assert first[0].key % 12 == root, (prompt, bar.index)
        assert checked >= 3, prompt


def test_melody_stays_in_key() -> None:
    plan = make_plan("pop in G major", seed=9, duration_seconds=60)
    scale = {(plan.key_root + s) % 12 for s in scale_for(plan.mode)}
    notes = role_events(compose(plan), "melody")
    assert len(notes) > 10
    assert all(n.key % 12 in scale for n in notes)


def test_melody_repeats_and_varies_motifs() -> None:
    a = arrange("pop", duration=90)
    melody = role_events(a, "melody")
    rhythms: list[tuple[float, ...]] = []
    for bar in a.bars:
        notes = in_bar(a, melody, bar)
        if len(notes) >= 2 and not bar.is_end:
            rhythms.append(tuple(round(p * 4) / 4 for p, _ in notes))
    assert len(rhythms) >= 12
    distinct = len(set(rhythms))
    assert distinct < 0.6 * len(rhythms)  # motifs come back...
    assert distinct >= 3  # ...but it is not one bar on a loop
    choruses = [b for b in a.bars if b.section.name == "chorus" and b.position == 0]
    hooks = {tuple(round(p * 4) for p, _ in in_bar(a, melody, b)) for b in choruses}
    assert len(choruses) >= 2 and len(hooks) == 1  # the hook returns in every chorus


def test_melody_sits_in_the_instrument_range() -> None:
    a = arrange("lofi with a flute", duration=60)
    part = a.plan.part("melody")
    assert part is not None
    keys = [e.key for e in role_events(a, "melody")]
    assert min(keys) >= part.center - 12 and max(keys) <= part.center + 12


# -- determinism ---------------------------------------------------------------------


def test_same_plan_same_notes_different_seed_different_notes() -> None:
    a = arrange("lofi in C minor", seed=42, duration=30)
    assert a.events == arrange("lofi in C minor", seed=42, duration=30).events
    c = arrange("lofi in C minor", seed=43, duration=30)
    assert a.events != c.events
    assert [e.key for e in role_events(a, "melody")] != [e.key for e in role_events(c, "melody")]


# -- continuation and focus --------------------------------------------------------


def test_continuation_starts_where_the_last_track_stopped() -> None:
    first = make_plan("pop in D major", seed=1, duration_seconds=30)
    second = compose(make_plan("pop", seed=2, duration_seconds=30, continuation=first.as_dict()))
    index = first.as_dict()["next_progression_index"]
    assert second.bars[0].chord.symbol == first.progression[index]


def _edge_report(plan: Plan) -> tuple[list[NoteEvent], list[NoteEvent]]:
    a = compose(plan)
    bar_seconds = 4 * 60 / plan.tempo_bpm
    head = [e for e in a.events if e.start < bar_seconds]
    end_bar = a.bars[-1].start * 60 / plan.tempo_bpm
    tail = [e for e in a.events if e.start >= end_bar - bar_seconds]
    return head, tail


@pytest.mark.parametrize("index", [0, 1, 4])
def test_focus_segments_have_soft_edges(index: int) -> None:
    segment = plan_focus_segment(2024, index, goal_prompt="lofi for deep work",
                                 intensity="high", divergence=0.7)  # fmt: skip
    head, tail = _edge_report(segment)
    assert head and tail
    beat = 60 / segment.tempo_bpm
    first_beat = [e for e in head if e.start < beat]
    assert first_beat and max(e.velocity for e in first_beat) <= 45
    assert max(e.velocity for e in tail) <= 60
    drums = segment.part("drums")
    assert drums is not None
    for e in head + tail:
        if e.channel == drums.channel:
            assert e.key not in (KICK, KICK2, CRASH, 57, SNARE), e


def test_long_focus_piece_breathes_between_segments() -> None:
    plan = make_plan("lofi focus", seed=3, duration_seconds=300, focus=True)
    a = compose(plan)
    drums = plan.part("drums")
    assert drums is not None
    starts = [
        b
        for b in a.bars
        if b.index > 0 and b.section.segment != a.bars[b.index - 1].section.segment
    ]
    assert starts
    for bar in starts:
        hits = in_bar(a, role_events(a, "drums"), bar)
        assert not any(e.key in (KICK, KICK2, CRASH, SNARE) for _, e in hits)


def test_velocities_are_on_the_grid_and_still_humanised() -> None:
    arrangement = compose(make_plan("smooth jazz with piano", seed=3, duration_seconds=30))
    velocities = [e.velocity for e in arrangement.events]
    assert all(v in range(3, 128, 4) for v in velocities)
    assert len(set(velocities)) >= 8, "humanisation survives the grid"
    assert on_velocity_grid(0) == 3 and on_velocity_grid(200) == 127
    assert on_velocity_grid(100.9) == 99 and on_velocity_grid(101.1) == 103
