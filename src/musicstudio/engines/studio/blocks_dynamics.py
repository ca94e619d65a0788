"""Gain envelopes on a coarse grid: fades, a gentle compressor and a brick-wall limiter.

Every dynamic stage of the master is a gain that varies slowly, so it is computed on
"knots" every ``R`` frames (42 frames, ~1 ms at 44.1 kHz) from per-knot peaks and
powers gathered while the audio streams past, and applied by linear interpolation
between knots. That keeps the arrays ~60x smaller than the audio, lets the master gain
be solved for a loudness target without touching the audio again, and gives stems the
exact same gain curve as the master.

The limiter's guarantee survives the interpolation: a sample in sub-block ``j`` (frames
``[jR, (j+1)R)``) gets a gain between knots ``j`` and ``j+1``, so it is enough that every
knot's gain keeps both neighbouring sub-blocks' peaks under the ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from musicstudio.engines.studio.audio import PCM, Mono, quantum_frames

Knots = npt.NDArray[np.float64]

LIMITER_ATTACK_S = 0.005
LIMITER_HOLD_S = 0.04
COMPRESSOR_RATIO = 2.0
COMPRESSOR_THRESHOLD_DB = 4.0  # above the track's average short-term level
COMPRESSOR_KNEE_DB = 6.0
COMPRESSOR_WINDOW_S = 0.03  # detector RMS window
COMPRESSOR_SMOOTH_S = 0.08  # look-ahead hold and smoothing of the gain reduction
_SILENT_POWER = 1e-10


def knot_frames(sample_rate: int) -> int:
    """Frames between knots: the largest even divisor of 100 ms that is at most 64 frames.

    Even, so the half-rate loudness analysis has a whole number of samples per knot.
    """
    quantum = quantum_frames(sample_rate)
    return next(r for r in range(64, 0, -2) if quantum % r == 0)


def knot_count(total_frames: int, r: int) -> int:
    """Knots needed to cover ``total_frames`` (one per sub-block plus the closing one)."""
    return math.ceil(total_frames / r) + 1


def _sub_blocks(block: PCM, r: int) -> npt.NDArray[np.float32]:
    """``block`` as (sub-blocks, r * 2) rows, zero-padding a short last sub-block."""
    frames = block.shape[0]
    whole = math.ceil(frames / r) * r
    if whole != frames:
        padded = np.zeros((whole, block.shape[1]), dtype=np.float32)
        padded[:frames] = block
        block = padded
    return block.reshape(-1, r * block.shape[1])


def sub_block_peaks(block: PCM, r: int) -> npt.NDArray[np.float32]:
    """Largest absolute sample (either channel) of each ``r``-frame sub-block (NaN-free input).

    Clearing the sign bit of the float32 bit patterns gives |x|, and non-negative floats
    order like their bit patterns as integers: one masking pass and one integer max,
    about three times cheaper than separate max and min reductions.
    """
    rows = _sub_blocks(np.ascontiguousarray(block, dtype=np.float32), r)
    magnitudes = np.bitwise_and(rows.view(np.int32), np.int32(0x7FFFFFFF))
    return np.ascontiguousarray(magnitudes.max(axis=1)).view(np.float32)


def sub_block_powers(block: PCM, r: int) -> npt.NDArray[np.float64]:
    """Mean square (summed over channels) of each ``r``-frame sub-block."""
    rows = _sub_blocks(block, r)
    return np.asarray(np.einsum("ij,ij->i", rows, rows, dtype=np.float64) / r, dtype=np.float64)


def knot_limits(peaks: npt.NDArray[np.floating], ceiling: float) -> Knots:
    """Largest gain each knot may have so both sub-blocks it touches stay under ``ceiling``."""
    padded = np.concatenate([[0.0], np.asarray(peaks, dtype=np.float64), [0.0]])
    worst = np.maximum(padded[:-1], padded[1:])
    with np.errstate(divide="ignore"):
        return np.where(worst > 0, ceiling / np.maximum(worst, 1e-30), np.inf)


def limiter_gain(allowed: Knots, attack: int, hold: int) -> Knots:
    """Smooth gain <= ``allowed`` everywhere and <= 1: a look-ahead brick-wall limiter.

    The allowed gain is min-filtered over ``[k - hold - attack, k + attack]`` and then
    averaged over ``[k - attack, k + attack]``. Every value in that average comes from a
    window containing ``k``, so the result never exceeds what knot ``k`` allows, while it
    ramps down over ``attack`` knots before a peak instead of jumping.
    """
    need = np.minimum(1.0, allowed)
    if need.size == 0 or float(need.min()) >= 1.0:
        return np.ones_like(need)
    size = hold + 2 * attack + 1
    # A positive origin shifts the window left: it covers [k - hold - attack, k + attack].
    held = ndimage.minimum_filter1d(need, size=size, origin=hold // 2, mode="nearest")
    smooth = ndimage.uniform_filter1d(held, size=2 * attack + 1, mode="nearest")
    return np.asarray(np.minimum(smooth, need), dtype=np.float64)


def limiter_knots(sample_rate: int, r: int) -> tuple[int, int]:
    """(attack, hold) of the limiter in knots."""
    attack = max(1, math.ceil(LIMITER_ATTACK_S * sample_rate / r))
    hold = max(0, round(LIMITER_HOLD_S * sample_rate / r))
    return attack, hold


def compressor_gain(powers: npt.NDArray[np.float64], sample_rate: int, r: int) -> Knots:
    """Gentle 2:1 soft-knee compression of the loudest moments, as a gain per knot.

    The detector is a 30 ms RMS; the threshold sits 4 dB above the track's average
    level while playing, so it only catches peaks of density (drum hits on a full
    chorus) and leaves the rest alone. The gain reduction is held over a short look-ahead
    window and smoothed, which gives a fast but click-free attack and a soft release.
    It depends only on levels relative to the track itself, so it does not change when
    the master gain does.
    """
    knots = powers.size + 1
    if powers.size == 0:
        return np.ones(knots)
    window = max(1, round(COMPRESSOR_WINDOW_S * sample_rate / r))
    detector = ndimage.uniform_filter1d(powers, size=window, mode="nearest")
    active = detector[detector > max(_SILENT_POWER, float(detector.max()) * 1e-4)]
    if active.size == 0:
        return np.ones(knots)
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(np.maximum(detector, _SILENT_POWER))
    threshold = 10.0 * math.log10(float(np.mean(active))) + COMPRESSOR_THRESHOLD_DB
    over = level - threshold
    half = COMPRESSOR_KNEE_DB / 2
    slope = 1.0 - 1.0 / COMPRESSOR_RATIO
    reduction = np.where(
        over <= -half,
        0.0,
        np.where(over >= half, slope * over, slope * (over + half) ** 2 / (2 * COMPRESSOR_KNEE_DB)),
    )
    span = max(1, round(COMPRESSOR_SMOOTH_S * sample_rate / r))
    held = ndimage.maximum_filter1d(reduction, size=span, mode="nearest")
    smooth = ndimage.uniform_filter1d(held, size=span, mode="nearest")
    # Sub-block j's reduction goes on knot j (its start); the closing knot repeats the last.
    smooth = np.append(smooth, smooth[-1])
    return np.asarray(10.0 ** (-smooth / 20.0), dtype=np.float64)


def fade_gain(
    total_frames: int, r: int, sample_rate: int, fade_in_s: float, fade_out_s: float
) -> Knots:
    """Raised-cosine fade-in (no click) and fade-out (every clip ends) as knot gains."""
    knots = knot_count(total_frames, r)
    frames = np.minimum(np.arange(knots, dtype=np.float64) * r, total_frames)
    gain = np.ones(knots)
    n_in = max(1.0, fade_in_s * sample_rate)
    n_out = max(1.0, fade_out_s * sample_rate)
    head = frames < n_in
    gain[head] = 0.5 - 0.5 * np.cos(np.pi * frames[head] / n_in)
    to_end = total_frames - frames
    tail = to_end < n_out
    gain[tail] *= 0.5 - 0.5 * np.cos(np.pi * to_end[tail] / n_out)
    return gain


class Envelope:
    """A product of knot-gain curves, applied to audio by linear interpolation."""

    def __init__(self, total_frames: int, r: int, factors: Sequence[Knots] = ()) -> None:
        self.total_frames = total_frames
        self.r = r
        self.factors: list[Knots] = list(factors)
        self._ramp = (np.arange(r, dtype=np.float32) / np.float32(r))[None, :]
        self._cache: tuple[int, int, Mono] | None = None

    def with_factor(self, knots: Knots) -> Envelope:
        """A new envelope with one more factor (the original is unchanged)."""
        return Envelope(self.total_frames, self.r, [*self.factors, knots])

    def scaled(self, gain: float) -> Envelope:
        """A new envelope times a constant (folded into the last factor: no extra work)."""
        if not self.factors:
            return self.with_factor(np.full(knot_count(self.total_frames, self.r), gain))
        return Envelope(self.total_frames, self.r, [*self.factors[:-1], self.factors[-1] * gain])

    def knots(self) -> Knots:
        """The product of all factors at the knots."""
        total = np.ones(knot_count(self.total_frames, self.r))
        for factor in self.factors:
            total = total * factor
        return total

    def sub_block_bound(self) -> Knots:
        """An upper bound of the interpolated gain inside each sub-block."""
        bound = np.ones(knot_count(self.total_frames, self.r) - 1)
        for factor in self.factors:
            bound = bound * np.maximum(factor[:-1], factor[1:])
        return bound

    def block(self, start: int, end: int) -> Mono:
        """Per-frame gain for frames ``[start, end)``; ``start`` must be a multiple of ``r``.

        The last block asked for is cached: the master and every stem ask for the same
        block in turn.
        """
        if self._cache is not None and self._cache[:2] == (start, end):
            return self._cache[2]
        if start % self.r:
            raise ValueError("blocks must start on a knot")
        first = start // self.r
        count = math.ceil((end - start) / self.r)
        gain: Mono | None = None
        for factor in self.factors:
            left = factor[first : first + count].astype(np.float32)[:, None]
            right = factor[first + 1 : first + count + 1].astype(np.float32)[:, None]
            part = (left + (right - left) * self._ramp).reshape(-1)[: end - start]
            gain = part if gain is None else gain * part
        if gain is None:
            gain = np.ones(end - start, dtype=np.float32)
        self._cache = (start, end, gain)
        return gain
