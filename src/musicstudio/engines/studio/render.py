"""Note events -> stereo PCM blocks with a General MIDI SoundFont (tinysoundfont).

The synthesiser is stepped by hand: note on/off events are sorted by sample frame and
``render`` fills the buffer exactly up to each one, so timing is sample-accurate and the
output is bit-identical for the same events and block size (no wall clock, no audio
thread). One part is rendered at a time, one block at a time, so memory stays flat.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from musicstudio.engines.studio.audio import PCM, SAMPLE_RATE
from musicstudio.engines.studio.compose import Arrangement
from musicstudio.engines.studio.notecache import (
    DRUM_HOLD_QUANTUM_S,
    HOLD_QUANTUM_S,
    Note,
    NoteCache,
    NoteRenderer,
    cached_blocks,
    pair_notes,
    split_notes,
)
from musicstudio.engines.studio.plan import Part
from musicstudio.engines.studio.sf2_layout import SoundFontLayout
from musicstudio.engines.studio.soundfont import TsfFont

MAX_VOICES = 256
# Drum hits are short but cymbals ring for 7-10 s after note-off; at most 24 drum voices
# makes tinysoundfont reuse the voice furthest into its release (by then > 40 dB down)
# instead of mixing dozens of inaudible tails: 2-3x faster on busy kits.
MAX_DRUM_VOICES = 24
_DRUM_BANK = 128

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


def _program_available(font: TsfFont, bank: int, program: int) -> int:
    """``program`` if the bank has it, else the first of its family, else the first preset."""
    for candidate in (program, program // 8 * 8, 0):
        if font.get_preset_index(bank, candidate) >= 0:
            return candidate
    return 0


def preset_for(font: TsfFont, part: Part) -> tuple[int, int]:
    """(bank, program) the part plays: its own, or the nearest the bank has."""
    if part.is_drums:
        # ``program`` is the GS kit number for drums; small banks only have kit 0.
        kit = part.program if font.get_preset_index(_DRUM_BANK, part.program) >= 0 else 0
        return _DRUM_BANK, kit
    return 0, _program_available(font, 0, part.program)


def setup_channel(font: TsfFont, part: Part) -> None:
    """Select the part's program (or drum kit) and set its volume (CC7) and pan (CC10)."""
    bank, program = preset_for(font, part)
    if not part.is_drums:
        font.channel_set_bank(part.channel, bank)
    font.channel_set_preset_number(part.channel, program, part.is_drums)
    font.channel_midi_control(part.channel, 7, part.volume)
    font.channel_midi_control(part.channel, 10, part.pan)


def render_part_blocks(
    arrangement: Arrangement,
    part: Part,
    font: TsfFont,
    output_mode: Any,
    total_frames: int,
    block: int,
    sample_rate: int = SAMPLE_RATE,
    *,
    layout: SoundFontLayout | None = None,
    clone: Callable[[], TsfFont] | None = None,
    bank_id: str = "",
) -> Iterator[PCM]:
    """Yield one part's audio as float32 stereo blocks of ``block`` frames (last one shorter).

    With the bank's ``layout`` and a ``clone`` factory, repeated notes are rendered once
    (``notecache``); without them every note is stepped through ``font``. The same buffer
    is reused for every block: a consumer must copy what it keeps.
    """
    events = midi_events(arrangement, total_frames, sample_rate, part.channel)
    bank, program = preset_for(font, part)
    preset_layout = layout.preset(bank, program) if layout is not None else None
    if preset_layout is None or clone is None:
        yield from _stepped_blocks(
            events, part, font, output_mode, total_frames, block, sample_rate
        )
        return
    cached, stepped = split_notes(pair_notes(events), preset_layout, sample_rate)

    def make_font() -> TsfFont:
        fresh = clone()
        fresh.set_output(output_mode, sample_rate, 0.0)
        fresh.set_max_voices(MAX_VOICES)
        setup_channel(fresh, part)
        return fresh

    quantum = DRUM_HOLD_QUANTUM_S if part.is_drums else HOLD_QUANTUM_S
    cache = NoteCache(
        NoteRenderer(make_font, part.channel, sample_rate, bank_id),
        preset_layout,
        (bank, program),
        round(quantum * sample_rate),
    )
    direct = (
        _stepped_blocks(
            _note_events(stepped, part.channel),
            part,
            font,
            output_mode,
            total_frames,
            block,
            sample_rate,
        )
        if stepped
        else None
    )
    buffer = np.empty((block, 2), dtype=np.float32)
    for start, end, ring in cached_blocks(cached, cache, total_frames, block, sample_rate):
        if direct is not None:
            out = next(direct)
            ring.take(start, out)
        else:
            out = buffer[: end - start]
            ring.take(start, out, add=False)
        yield out


def _note_events(notes: list[Note], channel: int) -> list[MidiEvent]:
    events: list[MidiEvent] = []
    for on, off, key, velocity in notes:
        events.append((on, 1, channel, key, velocity))
        if off is not None:
            events.append((off, 0, channel, key, 0))
    events.sort()
    return events


def _stepped_blocks(
    events: list[MidiEvent],
    part: Part,
    font: TsfFont,
    output_mode: Any,
    total_frames: int,
    block: int,
    sample_rate: int,
) -> Iterator[PCM]:
    """Step the synthesiser through ``events``, rendering exactly up to each one."""
    font.set_output(output_mode, sample_rate, 0.0)
    font.set_max_voices(MAX_DRUM_VOICES if part.is_drums else MAX_VOICES)
    setup_channel(font, part)
    buffer = np.empty((block, 2), dtype=np.float32)
    index = 0
    for start in range(0, total_frames, block):
        end = min(total_frames, start + block)
        out = buffer[: end - start]
        pos = start
        while pos < end:
            target = end
            if index < len(events) and events[index][0] < target:
                target = events[index][0]
            if target > pos:
                # Row slices of a C-ordered (n, 2) array are contiguous interleaved stereo.
                font.render(out[pos - start : target - start], False)
                pos = target
            while index < len(events) and events[index][0] <= pos:
                _, kind, channel, key, velocity = events[index]
                if kind:
                    font.channel_note_on(channel, key, velocity / 127.0)
                else:
                    font.channel_note_off(channel, key)
                index += 1
        if not math.isfinite(float(out.sum())):  # cheap test; one bad sample poisons the sum
            np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        yield out
