"""Render each distinct note once, then place copies: the fast path of the SoundFont renderer.

tinysoundfont's cost is per voice and per output sample, and music repeats itself: a
drum part strikes the same few keys hundreds of times, a progression returns every few
bars. With no controller changes during a part (the renderer sends none), one voice's
output depends only on its key, its velocity and when its note-off comes, so a note can
be rendered alone and added in wherever it occurs. The voices of the synthesiser sum
linearly, so the part is the same music; what differs is measured in
``tests/engine/test_studio_notecache.py``.

* **Velocity.** tinysoundfont scales a voice by ``velocity / 127``; a note is reused at
  other velocities of the same velocity layer (``sf2_layout``) by scaling, when the key is
  *velocity-linear*. A probe (a short render at a few velocities, cached per process)
  tells whether it is: presets whose velocity also moves a filter (TimGM6mb's string
  ensembles, for example) are not, and their notes are shared only at equal velocity
  (grouping velocities in steps of 8 here measured -12 dB off on String Ensemble 2 and
  saved only a fifth of the time). The composer helps instead: velocities lie on a grid
  of 4 (``humanise.on_velocity_grid``) and sustained chords keep one level per section.
* **Note length.** Held lengths are grouped to ``HOLD_QUANTUM_S`` (the note-off moves by at
  most half of it; onsets stay sample-exact).
* **Tails.** A rendered note is cut where it has fallen ``TAIL_DB`` below its peak (with a
  short fade), and at most ``MAX_TAIL_S`` after its note-off.
* **Not cached** (rendered by stepping the synthesiser as before): keys with an exclusive
  class (hi-hats choke each other), notes held longer than ``MAX_HOLD_S``, notes still
  held at the end of the track.

Memory: the cache is bounded (``CACHE_BYTES``, least recently used entries go first) and
copies are summed into a ring buffer one block plus the longest note long.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from musicstudio.engines.studio.audio import PCM
from musicstudio.engines.studio.sf2_layout import PresetLayout
from musicstudio.engines.studio.soundfont import TsfFont

HOLD_QUANTUM_S = 0.001
DRUM_HOLD_QUANTUM_S = 0.01
TAIL_DB = -50.0
MAX_TAIL_S = 8.0
MAX_HOLD_S = 12.0
CACHE_BYTES = 64 * 1024 * 1024
_CHUNK = 4096
_FADE = 441  # 10 ms at 44.1 kHz
_PROBE = 1024
_TAIL_RATIO = 10 ** (TAIL_DB / 20)
_QUIET_CHUNKS = 2
_PROBE_VELOCITIES = (1, 40, 80, 100, 120)

# (frame on, frame off or None if still held at the end, key, velocity)
Note = tuple[int, int | None, int, int]
# Sets up a fresh clone of the bank for this part (program, volume, pan); returns it.
FontFactory = Callable[[], TsfFont]

_LINEAR: dict[tuple[str, int, int, int], bool] = {}


def pair_notes(events: list[tuple[int, int, int, int, int]]) -> list[Note]:
    """Note on/off events (``render.midi_events``, one channel) -> notes, in onset order."""
    open_notes: dict[int, tuple[int, int]] = {}
    notes: list[Note] = []
    for frame, kind, _channel, key, velocity in events:
        if kind:
            if velocity > 0:
                open_notes[key] = (frame, velocity)
        elif key in open_notes:
            on, vel = open_notes.pop(key)
            notes.append((on, frame, key, vel))
    notes.extend((on, None, key, vel) for key, (on, vel) in open_notes.items())
    notes.sort(key=lambda n: (n[0], n[2], n[1] is None, n[1] or 0, n[3]))
    return notes


@dataclass
class _Clip:
    audio: PCM
    velocity: int  # the velocity it was rendered at


class NoteRenderer:
    """Renders single notes of one part on its own synthesiser clone, and probes velocity."""

    def __init__(self, make_font: FontFactory, channel: int, sample_rate: int, bank_id: str):
        self._make_font = make_font
        self._font = make_font()
        self._channel = channel
        self._rate = sample_rate
        self._bank_id = bank_id
        self._dirty = False

    def _fresh(self) -> TsfFont:
        if self._dirty:  # a voice may still sound: start from a clean clone
            self._font = self._make_font()
            self._dirty = False
        return self._font

    def render(self, key: int, hold: int, velocity: int) -> PCM:
        """One note held ``hold`` frames, then released; cut at its audible end."""
        font = self._fresh()
        head = np.empty((hold, 2), dtype=np.float32)
        font.channel_note_on(self._channel, key, velocity / 127.0)
        font.render(head, False)
        font.channel_note_off(self._channel, key)
        chunks: list[PCM] = []
        peaks: list[float] = []
        max_chunks = math.ceil(MAX_TAIL_S * self._rate / _CHUNK)
        loudest = _peak(head)
        quiet = 0  # chunks in a row below the floor
        while len(chunks) < max_chunks:
            chunk = np.empty((_CHUNK, 2), dtype=np.float32)
            font.render(chunk, False)
            peak = _peak(chunk)
            if peak == 0.0:  # every voice has ended
                break
            chunks.append(chunk)
            peaks.append(peak)
            loudest = max(loudest, peak)
            quiet = quiet + 1 if peak < loudest * _TAIL_RATIO else 0
            if quiet >= _QUIET_CHUNKS:  # the release has decayed past the cut: stop early
                self._dirty = True
                break
        else:
            self._dirty = True  # still sounding: the next note gets a fresh clone
        # Keep the release up to the last chunk still within TAIL_DB of the note's peak.
        floor = loudest * _TAIL_RATIO
        keep = next((i + 1 for i in range(len(peaks) - 1, -1, -1) if peaks[i] >= floor), 0)
        audio = np.concatenate([head, *chunks[:keep]]) if keep else head
        if not math.isfinite(float(audio.sum())):
            np.nan_to_num(audio, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if keep < len(chunks) or self._dirty:
            n = min(_FADE, audio.shape[0])
            audio[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]
        return audio

    def velocity_linear(self, program_id: tuple[int, int], key: int) -> bool:
        """True when the key sounds the same at every velocity up to gain (cached)."""
        cache_key = (self._bank_id, program_id[0], program_id[1], key)
        if cache_key not in _LINEAR:
            _LINEAR[cache_key] = self._probe(key)
        return _LINEAR[cache_key]

    def _probe(self, key: int) -> bool:
        reference = self._probe_one(key, 127)
        scale = float(np.abs(reference).max())
        if scale == 0.0:
            return True
        for velocity in _PROBE_VELOCITIES:
            audio = self._probe_one(key, velocity)
            if float(np.abs(audio - reference * (velocity / 127.0)).max()) > 1e-4 * scale:
                return False
        return True

    def _probe_one(self, key: int, velocity: int) -> PCM:
        font = self._make_font()  # probes never disturb the note clone's voices
        out = np.empty((_PROBE, 2), dtype=np.float32)
        font.channel_note_on(self._channel, key, velocity / 127.0)
        font.render(out, False)
        return out


def _peak(audio: PCM) -> float:
    """Largest absolute sample (two flat reductions: faster than ``abs().max()``)."""
    return max(float(audio.max()), -float(audio.min())) if audio.size else 0.0


class NoteCache:
    """Rendered notes of one part, least recently used first out beyond ``CACHE_BYTES``."""

    def __init__(
        self,
        renderer: NoteRenderer,
        layout: PresetLayout,
        program_id: tuple[int, int],
        hold_quantum: int,
    ) -> None:
        self._renderer = renderer
        self._layout = layout
        self._program = program_id
        self._quantum = max(1, hold_quantum)
        self._clips: OrderedDict[tuple[int, int, int], _Clip] = OrderedDict()
        self._bytes = 0

    def _velocity_class(self, key: int, velocity: int) -> tuple[int, int]:
        """(class id, the velocity a class member is rendered at)."""
        index, top = self._layout.key(key).layer(velocity)
        if self._renderer.velocity_linear(self._program, key):
            return index, top
        return 1000 + velocity, velocity  # the filter moves with velocity: no sharing

    def clip(self, key: int, hold: int, velocity: int) -> tuple[PCM, float]:
        """The note's audio and the gain that brings it to ``velocity``."""
        held = max(1, round(hold / self._quantum)) * self._quantum
        vclass, at = self._velocity_class(key, velocity)
        cache_key = (key, held, vclass)
        found = self._clips.get(cache_key)
        if found is None:
            found = _Clip(self._renderer.render(key, held, at), at)
            self._clips[cache_key] = found
            self._bytes += found.audio.nbytes
            while self._bytes > CACHE_BYTES and len(self._clips) > 1:
                _, old = self._clips.popitem(last=False)
                self._bytes -= old.audio.nbytes
        else:
            self._clips.move_to_end(cache_key)
        return found.audio, velocity / found.velocity


class Ring:
    """A ring buffer of stereo frames that notes are added into, read out block by block."""

    def __init__(self, frames: int) -> None:
        self.size = frames
        self._buf = np.zeros((frames, 2), dtype=np.float32)
        self._scratch = np.empty((frames, 2), dtype=np.float32)
        self.in_use = False

    def clear(self) -> None:
        """Zero the ring for another part."""
        self._buf.fill(0.0)

    def add(self, at: int, clip: PCM, gain: float) -> None:
        """Add ``clip * gain`` starting at absolute frame ``at``."""
        n = clip.shape[0]
        if gain != 1.0:
            scaled = self._scratch[:n]
            np.multiply(clip, np.float32(gain), out=scaled)
            clip = scaled
        start = at % self.size
        first = min(n, self.size - start)
        self._buf[start : start + first] += clip[:first]
        if first < n:
            self._buf[: n - first] += clip[first:]

    def take(self, at: int, out: PCM, *, add: bool = True) -> None:
        """Add (or copy) frames ``at``.. into ``out`` and clear them from the ring."""
        n = out.shape[0]
        start = at % self.size
        first = min(n, self.size - start)
        for target, source in (
            (out[:first], self._buf[start : start + first]),
            (out[first:], self._buf[: n - first]),
        ):
            if target.shape[0]:
                if add:
                    target += source
                else:
                    target[:] = source
                source.fill(0.0)


def split_notes(
    notes: list[Note], layout: PresetLayout, sample_rate: int
) -> tuple[list[Note], list[Note]]:
    """(notes to cache, notes to render by stepping the synthesiser)."""
    max_hold = round(MAX_HOLD_S * sample_rate)
    cached: list[Note] = []
    stepped: list[Note] = []
    for note in notes:
        on, off, key, _ = note
        direct = off is None or off - on > max_hold or layout.key(key).exclusive
        (stepped if direct else cached).append(note)
    return cached, stepped


def ring_frames(block: int, sample_rate: int) -> int:
    """Ring length: one block plus the longest clip a note can make."""
    return block + round((MAX_HOLD_S + MAX_TAIL_S + 1.0) * sample_rate) + _CHUNK


def cached_blocks(
    notes: list[Note],
    cache: NoteCache,
    total_frames: int,
    block: int,
    sample_rate: int,
) -> Iterator[tuple[int, int, Ring]]:
    """For each block (start, end): add every note starting in it to the ring, then yield."""
    ring = _borrow_ring(ring_frames(block, sample_rate))
    try:
        index = 0
        for start in range(0, total_frames, block):
            end = min(total_frames, start + block)
            while index < len(notes) and notes[index][0] < end:
                on, off, key, velocity = notes[index]
                assert off is not None  # split_notes keeps held-to-the-end notes out
                audio, gain = cache.clip(key, off - on, velocity)
                audio = audio[: total_frames - on]
                ring.add(on, audio, gain)
                index += 1
            yield start, end, ring
    finally:
        ring.in_use = False


_RINGS = threading.local()


def _borrow_ring(frames: int) -> Ring:
    """This thread's ring if it is free and the right size, else a new one.

    Parts are rendered one after another: reusing the ring spares touching ~15 MB of
    fresh pages per part (measured ~6 ms per part here)."""
    ring: Ring | None = getattr(_RINGS, "ring", None)
    if ring is None or ring.in_use or ring.size != frames:
        ring = Ring(frames)
        _RINGS.ring = ring
    else:
        ring.clear()
    ring.in_use = True
    return ring
