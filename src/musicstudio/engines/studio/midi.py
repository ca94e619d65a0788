"""The composition as a Standard MIDI File (format 1), written directly as bytes.

Track 0 carries the tempo, time and key signatures; then one track per part with its
program, volume and pan and its notes on the part's own channel (drums on channel 10,
index 9, as General MIDI requires). Times are quantised to 480 ticks per quarter note
at the plan's tempo, the same note timing the audio was rendered from. A note struck
again before it ends is cut at the new strike, as in the audio.
"""

from __future__ import annotations

import itertools
import math
import struct
from pathlib import Path

from musicstudio.engines.studio.compose import Arrangement
from musicstudio.engines.studio.plan import Part

TICKS_PER_BEAT = 480
_MAX_TEMPO_US = 0xFFFFFF


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack(">I", len(data)) + data


def _track(events: list[tuple[int, int, bytes]]) -> bytes:
    """A track chunk from (tick, order, message) events; order breaks ties at one tick."""
    events.sort(key=lambda e: (e[0], e[1]))
    data = bytearray()
    last = 0
    for tick, _, message in events:
        data += _vlq(tick - last) + message
        last = tick
    data += _vlq(0) + b"\xff\x2f\x00"  # end of track
    return _chunk(b"MTrk", bytes(data))


_PARENT_MAJOR_OFFSET = {
    "major": 0,
    "ionian": 0,
    "dorian": 2,
    "phrygian": 4,
    "lydian": 5,
    "mixolydian": 7,
    "minor": 9,
    "aeolian": 9,
    "locrian": 11,
}


def _key_signature(root: int, mode: str) -> bytes:
    """Key signature meta event: sharps (+) or flats (-) and major/minor."""
    minor = "minor" in mode or mode in ("dorian", "phrygian", "aeolian", "locrian")
    # A mode shares its accidentals with its parent major scale, this many semitones below
    # the tonic (E dorian -> D major, two sharps; G mixolydian -> C major, none).
    major_root = (root - _PARENT_MAJOR_OFFSET.get(mode, 9 if minor else 0)) % 12
    # Position on the circle of fifths, as -5..6 (flats preferred past six sharps).
    fifths = (major_root * 7) % 12
    if fifths > 6:
        fifths -= 12
    return b"\xff\x59\x02" + struct.pack(">bB", fifths, 1 if minor else 0)


def _part_track(arrangement: Arrangement, part: Part, seconds_to_ticks: float) -> bytes:
    chan = part.channel & 0x0F
    # Order at one tick: setup, then note-offs, then note-ons (so re-strikes work).
    events: list[tuple[int, int, bytes]] = [
        (0, 0, b"\xff\x03" + _vlq(len(part.name.encode())) + part.name.encode()),
        (0, 0, bytes([0xC0 | chan, part.program & 0x7F])),
        (0, 0, bytes([0xB0 | chan, 7, part.volume & 0x7F])),
        (0, 0, bytes([0xB0 | chan, 10, part.pan & 0x7F])),
    ]
    events += _expression(arrangement.level_lane(part.channel), chan, seconds_to_ticks)
    notes: dict[int, list[tuple[int, int, int]]] = {}
    for event in arrangement.events_on(part.channel):
        if event.start >= arrangement.duration_seconds:
            continue
        on = round(event.start * seconds_to_ticks)
        off = max(on + 1, round(min(event.end, arrangement.duration_seconds) * seconds_to_ticks))
        notes.setdefault(event.key, []).append((on, off, max(1, min(127, event.velocity))))
    for key, strikes in notes.items():
        strikes.sort()
        for i, (on, off, velocity) in enumerate(strikes):
            if i + 1 < len(strikes):
                off = max(on + 1, min(off, strikes[i + 1][0]))
            events.append((on, 2, bytes([0x90 | chan, key & 0x7F, velocity])))
            events.append((off, 1, bytes([0x80 | chan, key & 0x7F, 0])))
    return _track(events)


def _expression(
    lane: tuple[tuple[float, float], ...], chan: int, seconds_to_ticks: float
) -> list[tuple[int, int, bytes]]:
    """The part's level ride as expression (CC11) relative to its loudest point, stepped
    every 50 ms through ramps."""
    if not lane:
        return []
    top = max(g for _, g in lane) or 1.0
    points: list[tuple[float, float]] = [lane[0]]
    for (t0, g0), (t1, g1) in itertools.pairwise(lane):
        steps = max(1, math.ceil((t1 - t0) / 0.05)) if g1 != g0 else 1
        points += [
            (t0 + (t1 - t0) * i / steps, g0 + (g1 - g0) * i / steps) for i in range(1, steps + 1)
        ]
    out: list[tuple[int, int, bytes]] = []
    last = -1
    for seconds, gain in points:
        value = max(0, min(127, round(127 * gain / top)))
        if value != last:
            out.append((round(seconds * seconds_to_ticks), 0, bytes([0xB0 | chan, 11, value])))
            last = value
    return out


def midi_note_counts(arrangement: Arrangement) -> dict[str, int]:
    """Notes written per role (those starting within the track)."""
    counts: dict[str, int] = {}
    for part in arrangement.plan.parts:
        counts[part.role] = counts.get(part.role, 0) + sum(
            1 for e in arrangement.events_on(part.channel) if e.start < arrangement.duration_seconds
        )
    return counts


def write_midi(arrangement: Arrangement, path: Path) -> Path:
    """Write the arrangement to ``path`` as a format-1 Standard MIDI File."""
    plan = arrangement.plan
    tempo_us = min(_MAX_TEMPO_US, round(60_000_000 / plan.tempo_bpm))
    seconds_to_ticks = TICKS_PER_BEAT * 1_000_000 / tempo_us
    title = plan.title.encode("utf-8")[:127]
    conductor = _track(
        [
            (0, 0, b"\xff\x03" + _vlq(len(title)) + title),
            (0, 0, b"\xff\x51\x03" + tempo_us.to_bytes(3, "big")),
            (0, 0, b"\xff\x58\x04\x04\x02\x18\x08"),  # 4/4, metronome every quarter
            (0, 0, _key_signature(plan.key_root, str(plan.mode))),
        ]
    )
    tracks = [_part_track(arrangement, part, seconds_to_ticks) for part in plan.parts]
    header = _chunk(b"MThd", struct.pack(">HHH", 1, 1 + len(tracks), TICKS_PER_BEAT))
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(header + conductor + b"".join(tracks))
    tmp.replace(path)
    return path
