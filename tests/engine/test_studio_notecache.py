"""The note cache renders a part like stepping the synthesiser would, only faster.

Fidelity is measured on real parts of several genres against the stepped renderer with
unlimited voices: the residual (what the cache changes: note-offs grouped to 1 ms or
10 ms, tails cut 50 dB below each note's peak) stays 35 dB below every part and 45 dB
below most.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from musicstudio.engines.studio import notecache
from musicstudio.engines.studio import render as render_mod
from musicstudio.engines.studio import soundfont as bank_mod
from musicstudio.engines.studio.compose import Arrangement, compose
from musicstudio.engines.studio.notecache import Ring, pair_notes, split_notes
from musicstudio.engines.studio.plan import Part, make_plan
from musicstudio.engines.studio.render import midi_events, render_part_blocks
from musicstudio.engines.studio.sf2_layout import (
    KeyLayers,
    LayoutError,
    SoundFontLayout,
    layout_for,
)

pytestmark = pytest.mark.skipif(
    bank_mod.tsf_module() is None, reason="tinysoundfont is a dependency; it must import"
)

BLOCK = 44100


@pytest.fixture(scope="module")
def bank() -> bank_mod.Bank:
    return bank_mod.identify_bank(bank_mod.bundled_bank_path(), "bundled")


def _part_audio(
    bank: bank_mod.Bank, arrangement: Arrangement, part: Part, frames: int, *, cached: bool
) -> npt.NDArray[np.float32]:
    font = bank_mod.open_font(bank)
    assert font is not None
    extra = (
        {"layout": layout_for(bank.path), "clone": lambda: bank_mod.open_font(bank)}
        if cached
        else {}
    )
    blocks = render_part_blocks(
        arrangement, part, font, bank_mod.output_mode_stereo(), frames, BLOCK, **extra
    )
    return np.concatenate([b.copy() for b in blocks])


def _isolated_sum(
    bank: bank_mod.Bank, arrangement: Arrangement, part: Part, frames: int
) -> npt.NDArray[np.float32]:
    """Every note rendered alone in one piece (exact length and velocity, whole tail), summed."""
    out = np.zeros((frames + 20 * 44100, 2), np.float32)
    for on, off, key, velocity in pair_notes(midi_events(arrangement, frames, 44100, part.channel)):
        font = bank_mod.open_font(bank)
        assert font is not None
        font.set_output(bank_mod.output_mode_stereo(), 44100, 0.0)
        font.set_max_voices(64)
        render_mod.setup_channel(font, part)
        held = (off if off is not None else frames) - on
        note = np.empty((held + 10 * 44100, 2), np.float32)
        font.channel_note_on(part.channel, key, velocity / 127.0)
        font.render(note[:held], False)
        font.channel_note_off(part.channel, key)
        font.render(note[held:], False)
        out[on : on + note.shape[0]] += note
    return out[:frames]


def _residual_db(test: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]) -> float:
    energy = float(np.square(reference, dtype=np.float64).sum())
    assert energy > 0
    residual = float(np.square(test - reference, dtype=np.float64).sum())
    return float(10 * np.log10(max(residual, 1e-30) / energy))


@pytest.mark.parametrize(
    "prompt",
    [
        "energetic rock anthem with strings",
        "epic cinematic orchestral",
        "smooth jazz",
        "calm ambient soundscape",
        "funk",
    ],
)
def test_cached_parts_match_a_full_rendering(
    bank: bank_mod.Bank, prompt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every part within 35 dB of a full rendering, and most within 45 dB.

    Pitched parts are compared with every note rendered alone in one call at its exact
    length and velocity with its whole tail, summed. Stepping the synthesiser through the
    events is no exact reference for them: tinysoundfont updates filters every 64 samples
    from the start of each ``render`` call, so a filtered preset renders differently
    depending on where other notes split the calls (one TimGM6mb string note rendered in
    two calls split at frame 169 differs by -12 dB). Drums are compared with the stepped
    render (voices unlimited), which alone chokes hi-hats. Measured when written: -38 (funk
    bass: note-offs grouped to 1 ms) to
    -69 dB.
    """
    # The stepped renderer caps drum voices for speed; lift that so both render every note.
    monkeypatch.setattr(render_mod, "MAX_DRUM_VOICES", render_mod.MAX_VOICES)
    arrangement = compose(make_plan(prompt, seed=5, duration_seconds=12))
    frames = 12 * 44100
    residuals = []
    for part in arrangement.plan.parts:
        cached = _part_audio(bank, arrangement, part, frames, cached=True)
        assert cached.shape == (frames, 2)
        if part.is_drums:
            reference = _part_audio(bank, arrangement, part, frames, cached=False)
        else:
            reference = _isolated_sum(bank, arrangement, part, frames)
        residuals.append(_residual_db(cached, reference))
        assert residuals[-1] < -35.0, (prompt, part.role, residuals[-1])
    assert float(np.median(residuals)) < -45.0, residuals


def test_rendering_is_identical_with_a_tiny_cache(
    bank: bank_mod.Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrangement = compose(make_plan("boom bap hip hop", seed=2, duration_seconds=8))
    frames = 8 * 44100
    roomy = [_part_audio(bank, arrangement, p, frames, cached=True) for p in arrangement.plan.parts]
    monkeypatch.setattr(notecache, "CACHE_BYTES", 1)  # evict after every new note
    tight = [_part_audio(bank, arrangement, p, frames, cached=True) for p in arrangement.plan.parts]
    for a, b in zip(roomy, tight, strict=True):
        assert np.array_equal(a, b)


def test_velocity_probe_tells_filter_presets_from_gain_only_ones(bank: bank_mod.Bank) -> None:
    def renderer(program: int) -> notecache.NoteRenderer:
        def make() -> bank_mod.TsfFont:
            font = bank_mod.open_font(bank)
            assert font is not None
            font.set_output(bank_mod.output_mode_stereo(), 44100, 0.0)
            font.set_max_voices(64)
            font.channel_set_bank(0, 0)
            font.channel_set_preset_number(0, program, False)
            return font

        return notecache.NoteRenderer(make, 0, 44100, f"test-{program}")

    # TimGM6mb's piano scales with velocity; its string ensemble moves a filter below ~110.
    assert renderer(0).velocity_linear((0, 0), 60) is True
    assert renderer(48).velocity_linear((0, 48), 60) is False


def test_layout_reads_every_preset_and_the_hihat_choke(bank: bank_mod.Bank) -> None:
    assert bank.path is not None
    layout = SoundFontLayout(bank.path)
    font = bank_mod.open_font(bank)
    assert font is not None
    for program in range(128):
        if font.get_preset_index(0, program) >= 0:
            assert layout.preset(0, program) is not None, program
    kit = layout.preset(128, 0)
    assert kit is not None
    assert kit.key(42).exclusive and kit.key(46).exclusive  # closed and open hi-hat
    assert not kit.key(36).exclusive and not kit.key(49).exclusive  # kick, crash
    assert layout.preset(0, 200) is None


def test_layout_rejects_a_file_that_is_not_a_soundfont(tmp_path: Path) -> None:
    path = tmp_path / "bad.sf2"
    path.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    with pytest.raises(LayoutError):
        SoundFontLayout(path)
    assert layout_for(path) is None  # the renderer then steps every note


def test_layers_split_velocities_at_range_edges() -> None:
    layers = KeyLayers((1, 64, 100), False)
    assert layers.layer(1) == (0, 63)
    assert layers.layer(63) == (0, 63)
    assert layers.layer(64) == (1, 99)
    assert layers.layer(127) == (2, 127)


def test_held_exclusive_and_long_notes_are_stepped(bank: bank_mod.Bank) -> None:
    layout = layout_for(bank.path) if bank.path else None
    assert layout is not None
    kit = layout.preset(128, 0)
    assert kit is not None
    rate = 44100
    notes = [
        (0, 4410, 36, 100),  # kick: cached
        (10, 4410, 42, 90),  # closed hi-hat: chokes, stepped
        (20, None, 36, 80),  # still held at the end: stepped
        (30, 30 + 13 * rate, 38, 70),  # longer than MAX_HOLD_S: stepped
    ]
    cached, stepped = split_notes(notes, kit, rate)
    assert cached == [notes[0]]
    assert stepped == notes[1:]


def test_pair_notes_matches_on_and_off_per_key() -> None:
    events = [(0, 1, 0, 60, 90), (5, 1, 0, 64, 80), (10, 0, 0, 60, 0), (12, 1, 0, 60, 70)]
    assert pair_notes(events) == [(0, 10, 60, 90), (5, None, 64, 80), (12, None, 60, 70)]


def test_pair_notes_agrees_with_midi_events_on_a_real_part() -> None:
    arrangement = compose(make_plan("house", seed=4, duration_seconds=10))
    part = arrangement.plan.parts[0]
    events = midi_events(arrangement, 10 * 44100, 44100, part.channel)
    notes = pair_notes(events)
    assert len(notes) == sum(1 for e in events if e[1] == 1 and e[4] > 0)
    assert all(off is None or off > on for on, off, _, _ in notes)


def test_ring_wraps_around_and_clears_what_it_hands_out() -> None:
    ring = Ring(10)
    clip = np.arange(16, dtype=np.float32).reshape(8, 2)
    ring.add(6, clip, 0.5)  # frames 6..13 wrap past the end of the 10-frame ring
    first = np.zeros((6, 2), np.float32)
    ring.take(6, first)
    assert np.array_equal(first, clip[:6] * 0.5)
    second = np.zeros((4, 2), np.float32)
    ring.take(12, second)
    assert np.array_equal(second[:2], clip[6:] * 0.5) and not second[2:].any()
    again = np.zeros((6, 2), np.float32)
    ring.take(6, again)
    assert not again.any()


def test_pair_notes_orders_held_and_released_notes_starting_together() -> None:
    events = [(0, 1, 0, 60, 90), (0, 1, 0, 64, 80), (9, 0, 0, 64, 0), (0, 1, 0, 67, 70)]
    events.sort()
    assert pair_notes(events) == [(0, None, 60, 90), (0, 9, 64, 80), (0, None, 67, 70)]


def test_ring_take_can_copy_instead_of_adding() -> None:
    ring = Ring(8)
    clip = np.ones((5, 2), np.float32)
    ring.add(6, clip, 2.0)  # frames 6..10 wrap
    out = np.full((5, 2), 7.0, np.float32)
    ring.take(6, out, add=False)
    assert np.array_equal(out, clip * 2.0)
    ring.take(6, out, add=False)
    assert not out.any()


def test_interleaved_parts_do_not_share_a_ring(bank: bank_mod.Bank) -> None:
    arrangement = compose(make_plan("funk", seed=8, duration_seconds=6))
    frames = 6 * 44100
    parts = arrangement.plan.parts[:2]
    alone = [_part_audio(bank, arrangement, p, frames, cached=True) for p in parts]

    def blocks(part: Part) -> Iterator[npt.NDArray[np.float32]]:
        font = bank_mod.open_font(bank)
        assert font is not None
        return render_part_blocks(
            arrangement, part, font, bank_mod.output_mode_stereo(), frames, BLOCK,
            layout=layout_for(bank.path) if bank.path else None,
            clone=lambda: bank_mod.open_font(bank),
        )  # fmt: skip

    first, second = blocks(parts[0]), blocks(parts[1])
    together: list[list[npt.NDArray[np.float32]]] = [[], []]
    for a, b in zip(first, second, strict=True):  # one block of each in turn
        together[0].append(a.copy())
        together[1].append(b.copy())
    for expected, got in zip(alone, together, strict=True):
        assert np.array_equal(expected, np.concatenate(got))
