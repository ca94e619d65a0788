"""Note events -> stereo PCM with a General MIDI SoundFont (tinysoundfont).

The synthesiser is stepped by hand: note on/off events are sorted by sample frame and
``render`` fills the buffer exactly up to each one, so timing is sample-accurate and the
output is bit-identical for the same events (no wall clock, no audio thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from musicstudio.engines.studio.audio import PCM, SAMPLE_RATE, Checkpoint, block_frames
from musicstudio.engines.studio.compose import Arrangement
from musicstudio.engines.studio.mix import mix_parts
from musicstudio.engines.studio.plan import Part
from musicstudio.engines.studio.soundfont import TsfFont

MAX_VOICES = 256

# (frame, kind, channel, key, velocity) with kind 0 = note off, 1 = note on. Sorting puts a
# note-off before a note-on at the same frame, so a repeated note re-strikes cleanly.
MidiEvent = tuple[int, int, int, int, int]


def midi_events(
    arrangement: Arrangement,
    total_frames: int,
    sample_rate: int = SAMPLE_RATE,
    channel: int | None = None,
) -> list[MidiEvent]:
    """Frame-stamped note on/off events, cut at ``total_frames``.

    A note-off for a key that is struck again before it ends is moved to the new strike:
    the synth releases every voice of a key on note-off, which would otherwise cut the
    newer note short.
    """
    by_key: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for event in arrangement.events:
        if channel is not None and event.channel != channel:
            continue
        on = round(event.start * sample_rate)
        if on >= total_frames:
            continue
        off = max(on + 1, round(event.end * sample_rate))
        by_key.setdefault((event.channel, event.key), []).append((on, off, event.velocity))
    out: list[MidiEvent] = []
    for (chan, key), notes in by_key.items():
        notes.sort()
        for i, (on, off, velocity) in enumerate(notes):
            if i + 1 < len(notes):
                off = min(off, notes[i + 1][0])
            out.append((on, 1, chan, key, velocity))
            if off < total_frames:
                out.append((off, 0, chan, key, 0))
    out.sort()
    return out


def _program_available(font: TsfFont, program: int) -> int:
    """``program`` if the bank has it, else the first instrument of its family, else piano."""
    for candidate in (program, program // 8 * 8, 0):
        if font.get_preset_index(0, candidate) >= 0:
            return candidate
    return 0


def setup_channel(font: TsfFont, part: Part) -> None:
    """Select the part's program and set its channel volume (CC7) and pan (CC10)."""
    font.channel_set_bank(part.channel, 0)
    program = 0 if part.is_drums else _program_available(font, part.program)
    font.channel_set_preset_number(part.channel, program, part.is_drums)
    font.channel_midi_control(part.channel, 7, part.volume)
    font.channel_midi_control(part.channel, 10, part.pan)


def render_part(
    arrangement: Arrangement,
    part: Part,
    font: TsfFont,
    output_mode: Any,
    total_frames: int,
    checkpoint: Checkpoint,
    sample_rate: int = SAMPLE_RATE,
) -> PCM:
    """Render one part's notes to float32 stereo of exactly ``total_frames`` frames."""
    font.set_output(output_mode, sample_rate, 0.0)
    font.set_max_voices(MAX_VOICES)
    setup_channel(font, part)
    out = np.zeros((total_frames, 2), dtype=np.float32)
    events = midi_events(arrangement, total_frames, sample_rate, part.channel)
    block = block_frames(total_frames, sample_rate)
    next_mark = block
    pos = 0
    index = 0
    while pos < total_frames:
        target = min(next_mark, total_frames)
        if index < len(events) and events[index][0] < target:
            target = events[index][0]
        if target > pos:
            # Row slices of a C-ordered (n, 2) array are contiguous interleaved stereo.
            font.render(out[pos:target], False)
            pos = target
        while index < len(events) and events[index][0] <= pos:
            _, kind, channel, key, velocity = events[index]
            if kind:
                font.channel_note_on(channel, key, velocity / 127.0)
            else:
                font.channel_note_off(channel, key)
            index += 1
        if pos >= next_mark:
            checkpoint(pos / total_frames)
            next_mark += block
    checkpoint(1.0)
    if not math.isfinite(float(out.sum())):  # a cheap test; a bad sample poisons the sum
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def render_soundfont(
    arrangement: Arrangement,
    new_font: Callable[[], TsfFont],
    output_mode: Any,
    total_frames: int,
    checkpoint: Checkpoint,
    sample_rate: int = SAMPLE_RATE,
) -> PCM:
    """Render every part with its own synth instance from ``new_font`` and mix them."""

    def one(part: Part, part_checkpoint: Checkpoint) -> PCM:
        font = new_font()
        return render_part(
            arrangement, part, font, output_mode, total_frames, part_checkpoint, sample_rate
        )

    return mix_parts(
        arrangement.plan.parts,
        one,
        total_frames,
        checkpoint,
        dict(arrangement.plan.genre.mix_levels),
        sample_rate,
    )
