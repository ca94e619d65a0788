"""Level each part against the others: a streaming level meter, role targets and gains.

General MIDI banks disagree wildly on instrument levels (a piano can sit 15 dB under a
bass in one bank and above it in another), so channel volumes alone cannot balance a
mix. Each part is measured with a cheap loudness estimate while it renders and then set
to a level relative to its role. The same gain is carried by the part's stem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from scipy import signal

from musicstudio.engines.studio.audio import PCM, SAMPLE_RATE
from musicstudio.engines.studio.plan import Part

# Target level per role relative to the drums (dB of weighted, gated RMS).
ROLE_LEVEL_DB: dict[str, float] = {
    "drums": 0.0,
    "bass": -2.0,
    "melody": -2.0,
    "chords": -5.0,
    "pad": -11.0,
}
DEFAULT_ROLE_LEVEL_DB = -6.0
_REFERENCE_DB = -20.0
_MAX_GAIN_DB = 30.0
_GATE_DB = 30.0
_BLOCK_SECONDS = 0.4
# Every 8th frame (5.5 kHz) is plenty for a level estimate and makes it eight times
# cheaper; plain decimation aliases, but aliasing moves energy rather than losing it.
_DECIMATE = 8
_WEIGHT_HZ = 120.0

# The mix bus's high-pass (sub-bass rumble and DC waste headroom without being heard). It
# filters the sum of the parts that reach down there (a sub-bus, in the mix) and each of
# their stems when it is written: the filter is linear, so the stems add up to the master.
HIGHPASS_HZ = 30.0
_HIGHPASS_LOWEST_KEY = 48


class LevelMeter:
    """Gated RMS (dB) after a 120 Hz high-pass, fed block by block.

    The high-pass stands in for the ear's low sensitivity to bass; the gate ignores
    0.4 s blocks more than 30 dB below the loudest, so a sparse part is judged by when it
    plays. Blocks are only decimated as they arrive (every 8th frame, mono: 2.7 % of the
    part); the filter and the blocks run once at the end, which saves a filter call per
    block (their fixed cost was most of the meter's time).
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        rate = sample_rate / _DECIMATE
        self._sos = signal.butter(2, _WEIGHT_HZ, "highpass", fs=rate, output="sos").astype(
            np.float32
        )
        self._block = max(1, int(_BLOCK_SECONDS * rate))
        self._frames = 0  # input frames seen, to keep the decimation phase across blocks
        self._picked: list[npt.NDArray[np.float32]] = []

    def add(self, pcm: PCM) -> None:
        """Feed the next block of the part."""
        phase = (-self._frames) % _DECIMATE
        self._frames += pcm.shape[0]
        picked = pcm[phase::_DECIMATE]
        if picked.shape[0]:
            self._picked.append(picked[:, 0] + picked[:, 1])

    def level_db(self) -> float | None:
        """The part's level; None for silence."""
        if not self._picked:
            return None
        weighted = signal.sosfilt(self._sos, np.concatenate(self._picked))
        squares = np.square(weighted, dtype=np.float32)
        usable = squares.size // self._block * self._block
        blocks = [np.mean(squares[:usable].reshape(-1, self._block), axis=1, dtype=np.float64)]
        if usable < squares.size:  # a part shorter than one block still gets a level
            blocks.append(np.array([np.mean(squares[usable:], dtype=np.float64)]))
        powers = np.concatenate(blocks)
        loudest = float(powers.max())
        if not math.isfinite(loudest) or loudest <= 1e-12:
            return None
        active = powers[powers >= loudest * 10 ** (-_GATE_DB / 10)]
        return 10 * math.log10(float(np.mean(active)))


def part_gain_db(
    part: Part, level_db: float | None, levels: Mapping[str, float] | None = None
) -> float | None:
    """Gain (dB) that puts the part at its role's level; None for a silent part."""
    if level_db is None:
        return None
    targets = {**ROLE_LEVEL_DB, **(levels or {})}
    target = _REFERENCE_DB + targets.get(part.role, DEFAULT_ROLE_LEVEL_DB)
    return max(-_MAX_GAIN_DB, min(_MAX_GAIN_DB, target - level_db))


def needs_highpass(part: Part, lowest_key: int | None) -> bool:
    """Whether the part reaches low enough for the bus high-pass to matter: drums (kicks,
    toms) and parts below C3 (a fundamental two octaves above the cutoff loses < 0.02 dB)."""
    if part.is_drums:
        return True
    return lowest_key is not None and lowest_key < _HIGHPASS_LOWEST_KEY


class HighPass:
    """The bus high-pass, streamed block by block (filter state carried); one per signal."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, cutoff_hz: float = HIGHPASS_HZ) -> None:
        self._sos = signal.butter(2, cutoff_hz, "highpass", fs=sample_rate, output="sos").astype(
            np.float32
        )
        self._zi = np.zeros((self._sos.shape[0], 2, 2), dtype=np.float32)

    def process(self, pcm: PCM) -> PCM:
        """The next block, filtered (a new C-ordered array)."""
        filtered, self._zi = signal.sosfilt(self._sos, pcm, axis=0, zi=self._zi)
        # sosfilt hands back a transposed view; one copy here saves one in every consumer.
        return np.ascontiguousarray(filtered, dtype=np.float32)


class LevelRide:
    """A part's level automation, applied block by block (in place).

    ``lane`` is (seconds, gain) breakpoints, linear between them and flat outside. A block
    inside a flat stretch costs one multiply (none at gain 1); only the blocks a ramp
    crosses are interpolated frame by frame.
    """

    def __init__(self, lane: Sequence[tuple[float, float]], sample_rate: int = SAMPLE_RATE):
        self._frames = np.array([round(t * sample_rate) for t, _ in lane], dtype=np.float64)
        self._gains = np.array([g for _, g in lane], dtype=np.float64)

    def apply(self, pcm: PCM, start: int) -> None:
        """Scale ``pcm`` (frames ``start``.. of the part) by the lane, in place."""
        if self._gains.size == 0:
            return
        end = start + pcm.shape[0]
        inside = (self._frames > start) & (self._frames < end)
        first = float(np.interp(start, self._frames, self._gains))
        last = float(np.interp(end, self._frames, self._gains))
        if not inside.any() and first == last:
            if first != 1.0:
                pcm *= np.float32(first)
            return
        frames = np.arange(start, end, dtype=np.float64)
        curve = np.interp(frames, self._frames, self._gains).astype(np.float32)
        pcm *= curve[:, None]
