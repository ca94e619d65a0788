"""Which velocities share a sound, per preset and key, read from a SoundFont's ``pdta`` chunk.

The note cache (``notecache``) renders each distinct note once and reuses it at other
velocities by scaling: tinysoundfont turns velocity into gain (``vel / 127``, linear) and
into the choice of regions (each region has a velocity range). Two velocities of one key
therefore sound alike up to gain exactly when they select the same regions. This module
reads the preset and instrument zones (key range, velocity range, exclusive class) and
cuts each key's velocities into such *layers*. Keys with an exclusive class (hi-hats that
choke each other) are flagged: a note of one ends notes of the others, so they cannot be
rendered in isolation.

Only the hydra (``pdta``) is read; the sample data is skipped with a seek, so a 140 MB
bank costs a few milliseconds. The format is the SoundFont 2.04 specification's: records
``phdr`` (38 bytes), ``pbag``/``ibag`` (4), ``pgen``/``igen`` (4), ``inst`` (22).
"""

from __future__ import annotations

import bisect
import logging
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

_GEN_INSTRUMENT = 41
_GEN_KEY_RANGE = 43
_GEN_VEL_RANGE = 44
_GEN_SAMPLE_ID = 53
_GEN_EXCLUSIVE_CLASS = 57

_FULL = (0, 127)

Zone = dict[int, int | tuple[int, int]]  # generator -> amount (ranges as (lo, hi))


class LayoutError(ValueError):
    """The file is not a SoundFont whose zones could be read."""


@dataclass(frozen=True)
class KeyLayers:
    """One key of one preset: the lowest velocity of each layer, and whether it chokes."""

    starts: tuple[int, ...]
    exclusive: bool

    def layer(self, velocity: int) -> tuple[int, int]:
        """(layer index, highest velocity in that layer) for a MIDI velocity 1-127."""
        index = bisect.bisect_right(self.starts, velocity) - 1
        top = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else 127
        return max(0, index), top


@dataclass(frozen=True)
class PresetLayout:
    """Velocity layers of every key of one preset (bank, program)."""

    keys: tuple[KeyLayers, ...]

    def key(self, key: int) -> KeyLayers:
        """The layers of MIDI key ``key`` (0-127)."""
        return self.keys[key]


def _chunks(stream: BinaryIO, end: int) -> dict[bytes, tuple[int, int]]:
    """Sub-chunk id -> (offset, size) for the chunks between here and ``end``."""
    found: dict[bytes, tuple[int, int]] = {}
    while stream.tell() + 8 <= end:
        head = stream.read(8)
        chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
        offset = stream.tell()
        if chunk_id == b"LIST":
            found[b"LIST:" + stream.read(4)] = (offset + 4, size - 4)
        else:
            found[chunk_id] = (offset, size)
        stream.seek(offset + size + (size & 1))
    return found


def _read_hydra(path: Path) -> dict[bytes, bytes]:
    with path.open("rb") as stream:
        head = stream.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise LayoutError(f"{path.name} is not a SoundFont 2 file")
        size = struct.unpack("<I", head[4:8])[0]
        top = _chunks(stream, 8 + size)
        if b"LIST:pdta" not in top:
            raise LayoutError(f"{path.name} has no pdta chunk")
        offset, length = top[b"LIST:pdta"]
        stream.seek(offset)
        subs = _chunks(stream, offset + length)
        hydra: dict[bytes, bytes] = {}
        for name in (b"phdr", b"pbag", b"pgen", b"inst", b"ibag", b"igen"):
            if name not in subs:
                raise LayoutError(f"{path.name} lacks the {name.decode()} chunk")
            at, n = subs[name]
            stream.seek(at)
            hydra[name] = stream.read(n)
    return hydra


def _generators(raw: bytes, first: int, last: int) -> Zone:
    zone: Zone = {}
    for index in range(first, last):
        oper, lo, hi = struct.unpack_from("<HBB", raw, index * 4)
        if oper in (_GEN_KEY_RANGE, _GEN_VEL_RANGE):
            zone[oper] = (lo, hi)
        else:
            zone[oper] = lo | hi << 8
    return zone


def _zones(bags: bytes, gens: bytes, first_bag: int, last_bag: int, terminal: int) -> list[Zone]:
    """Zones from bag ``first_bag`` to ``last_bag``; a leading zone without ``terminal`` is the
    global zone, whose generators become the others' defaults (and which is dropped)."""
    zones: list[Zone] = []
    for bag in range(first_bag, last_bag):
        gen_first = struct.unpack_from("<H", bags, bag * 4)[0]
        gen_last = struct.unpack_from("<H", bags, (bag + 1) * 4)[0]
        zones.append(_generators(gens, gen_first, gen_last))
    if zones and terminal not in zones[0]:
        defaults, zones = zones[0], zones[1:]
        zones = [{**defaults, **zone} for zone in zones]
    return [zone for zone in zones if terminal in zone]


def _range(zone: Zone, oper: int) -> tuple[int, int]:
    value = zone.get(oper, _FULL)
    return value if isinstance(value, tuple) else _FULL


class SoundFontLayout:
    """Velocity layers of every preset of one SoundFont file."""

    def __init__(self, path: Path) -> None:
        hydra = _read_hydra(path)
        self._hydra = hydra
        self._presets: dict[tuple[int, int], int] = {}
        for index in range(len(hydra[b"phdr"]) // 38 - 1):  # the last record is a sentinel
            program, bank = struct.unpack_from("<HH", hydra[b"phdr"], index * 38 + 20)
            self._presets.setdefault((bank, program), index)
        self._cache: dict[tuple[int, int], PresetLayout | None] = {}

    def preset(self, bank: int, program: int) -> PresetLayout | None:
        """The layout of (bank, program), or None if the file has no such preset."""
        if (bank, program) not in self._cache:
            index = self._presets.get((bank, program))
            self._cache[(bank, program)] = None if index is None else self._build(index)
        return self._cache[(bank, program)]

    def _regions(self, index: int) -> list[tuple[tuple[int, int], tuple[int, int], int]]:
        """(key range, velocity range, exclusive class) of every region of preset ``index``."""
        h = self._hydra
        first_bag = struct.unpack_from("<H", h[b"phdr"], index * 38 + 24)[0]
        last_bag = struct.unpack_from("<H", h[b"phdr"], (index + 1) * 38 + 24)[0]
        regions = []
        for pzone in _zones(h[b"pbag"], h[b"pgen"], first_bag, last_bag, _GEN_INSTRUMENT):
            inst = int(pzone[_GEN_INSTRUMENT])  # type: ignore[arg-type]
            if (inst + 1) * 22 + 22 > len(h[b"inst"]):
                raise LayoutError(f"instrument {inst} out of range")
            ibag_first = struct.unpack_from("<H", h[b"inst"], inst * 22 + 20)[0]
            ibag_last = struct.unpack_from("<H", h[b"inst"], (inst + 1) * 22 + 20)[0]
            pk, pv = _range(pzone, _GEN_KEY_RANGE), _range(pzone, _GEN_VEL_RANGE)
            for izone in _zones(h[b"ibag"], h[b"igen"], ibag_first, ibag_last, _GEN_SAMPLE_ID):
                ik, iv = _range(izone, _GEN_KEY_RANGE), _range(izone, _GEN_VEL_RANGE)
                keys = (max(pk[0], ik[0]), min(pk[1], ik[1]))
                vels = (max(pv[0], iv[0]), min(pv[1], iv[1]))
                if keys[0] <= keys[1] and vels[0] <= vels[1]:
                    exclusive = int(izone.get(_GEN_EXCLUSIVE_CLASS, 0))  # type: ignore[arg-type]
                    regions.append((keys, vels, exclusive))
        return regions

    def _build(self, index: int) -> PresetLayout:
        regions = self._regions(index)
        keys = []
        for key in range(128):
            starts = {1}
            exclusive = False
            for (klo, khi), (vlo, vhi), group in regions:
                if klo <= key <= khi:
                    starts.update(v for v in (vlo, vhi + 1) if 1 < v <= 127)
                    exclusive = exclusive or group != 0
            keys.append(KeyLayers(tuple(sorted(starts)), exclusive))
        return PresetLayout(tuple(keys))


_LOCK = threading.Lock()
_LAYOUTS: dict[str, SoundFontLayout | None] = {}


def layout_for(path: Path) -> SoundFontLayout | None:
    """The (cached) layout of the bank at ``path``; None when it cannot be read."""
    key = str(path.resolve())
    with _LOCK:
        if key not in _LAYOUTS:
            try:
                _LAYOUTS[key] = SoundFontLayout(path)
            except (OSError, LayoutError, struct.error) as exc:
                log.warning("cannot read the zones of %s (%s); notes are not cached", path, exc)
                _LAYOUTS[key] = None
        return _LAYOUTS[key]
