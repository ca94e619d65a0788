"""Mastering, block by block: room, fades, gentle compression, limiter, loudness to -14 LUFS.

The mix (one float32 buffer) is the only full-length array. One streamed pass adds the
room reverb (overlap-add FFT convolution) and gathers, per 1 ms knot, the sample peak
and the K-weighted power (at half rate); the master gain, fades, compressor and limiter
are then solved on those small arrays (see ``blocks_dynamics``) so that the predicted
loudness is on target; a second pass applies the resulting gain envelope in place and
measures the real loudness (full rate) and peak. If the prediction missed by more than
0.2 LU (never seen on real renders, but possible), another round corrects it; a last
constant trim closes any small remainder when the peak leaves room. The envelope is
returned so the stems can carry exactly the gain the master got.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy import signal

from musicstudio.engines.studio.audio import PCM, Checkpoint, block_frames, quantum_frames, spans
from musicstudio.engines.studio.blocks_dynamics import (
    Envelope,
    Knots,
    compressor_gain,
    fade_gain,
    knot_frames,
    knot_limits,
    limiter_gain,
    limiter_knots,
    sub_block_peaks,
)
from musicstudio.engines.studio.blocks_loudness import (
    HOPS_PER_BLOCK,
    LoudnessMeter,
    Powers,
    gated_loudness,
    lufs,
)

TARGET_LUFS = -14.0
CEILING_DBFS = -1.0
# Lossy encoders add up to ~0.6 dB of overshoot; this keeps decoded MP3 peaks near -1 dBFS.
LOSSY_CEILING_DBFS = -1.5
FADE_IN_SECONDS = 0.01
FOCUS_FADE_SECONDS = 0.5
# A focus segment's first and last second are levelled to this far under its loudness, so
# the seam between any two segments (rendered apart, by any worker) meets equal levels.
FOCUS_EDGE_BELOW_DB = 10.0
FOCUS_EDGE_SECONDS = 1.0
FOCUS_EDGE_RAMP_SECONDS = 2.0  # back to the composed level over the next two seconds
FOCUS_EDGE_MAX_DB = 36.0
ROOM_IR_SECONDS = 1.2  # the tail is 50 dB down by then
ROOM_FFT_SIZE = 1 << 18
_TOLERANCE_LU = 0.2
_TRIM_MIN_LU = 0.01
_MAX_ROUNDS = 3
_SILENCE_LUFS = -70.0
# The limit sits a hair under the ceiling so float rounding can never poke above it.
_CEILING_MARGIN = 0.995

RoomSink = Callable[[PCM], None]


class SilentAudio(ValueError):
    """The mix has no measurable signal, so it cannot be normalised."""


@dataclass(frozen=True)
class MasterReport:
    """Measurements taken on the finished master."""

    integrated_lufs: float
    peak_dbfs: float
    gain_db: float
    max_compression_db: float
    max_limiting_db: float
    rounds: int


@dataclass(frozen=True)
class Mastered:
    """The report and the gain envelope the mix received (stems apply the same one)."""

    report: MasterReport
    envelope: Envelope


def fade_seconds(
    duration_seconds: float, ending: str = "cadence", *, focus: bool = False
) -> tuple[float, float]:
    """(fade-in, fade-out). Focus music is made to be crossfaded with the next segment: its
    softness is composed in, so both ends get the same short fade and no long fade to silence
    (a player's crossfade over the last seconds then meets equal levels on both sides)."""
    if focus:
        return FOCUS_FADE_SECONDS, FOCUS_FADE_SECONDS
    return FADE_IN_SECONDS, fade_out_seconds(duration_seconds, ending)


def fade_out_seconds(duration_seconds: float, ending: str = "cadence") -> float:
    """Fade-out length: 8 % of the track between 50 ms and 3 s; longer for a fade ending."""
    if ending == "fade":
        return max(0.05, min(8.0, 0.15 * duration_seconds))
    return max(0.05, min(3.0, 0.08 * duration_seconds))


def edge_levels_db(
    mix: PCM, sample_rate: int, fade_in_s: float, fade_out_s: float
) -> tuple[float, float]:
    """RMS (dBFS, unweighted) of the first and of the last ``FOCUS_EDGE_SECONDS`` as they will
    sound through the master's fades: a strike right at the start loses more to the fade-in
    than a decay spread over the last second loses to the fade-out."""
    frames = min(mix.shape[0], max(1, int(FOCUS_EDGE_SECONDS * sample_rate)))
    n = np.arange(frames, dtype=np.float64)

    def raised_cosine(seconds: float) -> npt.NDArray[np.float64]:
        length = max(1.0, seconds * sample_rate)
        return np.where(n < length, 0.5 - 0.5 * np.cos(np.pi * np.minimum(n, length) / length), 1.0)

    def level(block: PCM, weight: npt.NDArray[np.float64]) -> float:
        power = float(np.mean(np.square(block, dtype=np.float64) * np.square(weight)[:, None]))
        return 10.0 * math.log10(power) if power > 0 else -math.inf

    head = level(mix[:frames], raised_cosine(fade_in_s))
    tail = level(mix[-frames:], raised_cosine(fade_out_s)[::-1])
    return head, tail


def edge_gain(
    knots: int, sample_rate: int, r: int, head_db: float, tail_db: float, target_db: float
) -> Knots:
    """Knot gains that bring the first and last ``FOCUS_EDGE_SECONDS`` (measured at
    ``head_db`` and ``tail_db``) to ``target_db``, ramping back to 0 dB over the next seconds.

    A composed fade ends differently from how it starts (a struck chord decays; the next
    segment opens on fresh notes), so matching the edges by measurement is what makes any
    two consecutive segments meet at the same level. Plain RMS, not K-weighting: a decaying
    tail is bass-heavy, and K-weighting would read it quieter than a listener hears it."""
    per_second = sample_rate / r
    edge = max(1, round(FOCUS_EDGE_SECONDS * per_second))
    ramp = max(1.0, FOCUS_EDGE_RAMP_SECONDS * per_second)

    def correction(level: float) -> float:
        if not math.isfinite(level):
            return 0.0
        return max(-FOCUS_EDGE_MAX_DB, min(FOCUS_EDGE_MAX_DB, target_db - level))

    index = np.arange(knots, dtype=np.float64)
    from_end = (knots - 1) - index
    head = correction(head_db) * np.clip((edge + ramp - index) / ramp, 0.0, 1.0)
    tail = correction(tail_db) * np.clip((edge + ramp - from_end) / ramp, 0.0, 1.0)
    gain: Knots = 10.0 ** ((head + tail) / 20.0)
    return gain


@lru_cache(maxsize=2)
def room_impulse(sample_rate: int) -> PCM:
    """A decorrelated stereo reverb tail: darkened noise with a 1.4 s exponential decay."""
    rng = np.random.default_rng(0xA11CE)
    length = int(ROOM_IR_SECONDS * sample_rate)
    predelay = int(0.012 * sample_rate)
    t = np.arange(length, dtype=np.float64) / sample_rate
    noise = rng.standard_normal((length, 2))
    # One-pole low-pass: high frequencies die faster in a real room.
    damped = signal.lfilter([0.35], [1.0, -0.65], noise, axis=0)
    ir = damped * np.exp(-t * 6.91 / 1.4)[:, None]
    ir[:predelay] = 0.0
    ir /= np.sqrt((ir**2).sum(axis=0, keepdims=True))
    result = np.asarray(ir, dtype=np.float32)
    result.setflags(write=False)
    return result


@lru_cache(maxsize=2)
def _room_spectrum(sample_rate: int, nfft: int) -> npt.NDArray[np.complex64]:
    spectrum = scipy.fft.rfft(room_impulse(sample_rate), nfft, axis=0)
    result = np.asarray(spectrum, dtype=np.complex64)
    result.setflags(write=False)
    return result


class _Analysis:
    """Per-knot peaks and K-weighted powers of a streamed signal, and its loudness."""

    def __init__(self, sample_rate: int, r: int, decimate: int = 1) -> None:
        self.r = r
        self.meter = LoudnessMeter(sample_rate, decimate, resolution=r)
        self._peaks: list[npt.NDArray[np.float32]] = []
        self.peak = 0.0

    def add(self, block: PCM) -> None:
        peaks = sub_block_peaks(block, self.r)
        self._peaks.append(peaks)
        self.peak = max(self.peak, float(peaks.max()) if peaks.size else 0.0)
        self.meter.add(block)

    def peaks(self) -> npt.NDArray[np.float32]:
        return np.concatenate(self._peaks) if self._peaks else np.zeros(0, np.float32)


def add_room(
    mix: PCM,
    wet: float,
    sample_rate: int,
    on_final: Callable[[int, int], None],
    room_sink: RoomSink | None,
    checkpoint: Checkpoint,
    nfft: int = ROOM_FFT_SIZE,
) -> None:
    """Add ``wet`` of the room reverb to ``mix`` in place, by overlap-add FFT convolution.

    ``on_final(start, end)`` is called as each stretch of the mix is final (dry plus its
    reverb), in order; ``room_sink`` receives the reverb itself (the room stem).
    """
    frames = mix.shape[0]
    r = knot_frames(sample_rate)
    if wet <= 0:
        on_final(0, frames)
        checkpoint(1.0)
        return
    spectrum = _room_spectrum(sample_rate, nfft)
    ir_frames = room_impulse(sample_rate).shape[0]
    # A whole number of knots per hop keeps the room stem's sub-blocks aligned.
    hop = (nfft - ir_frames + 1) // r * r
    pending = np.zeros((nfft, 2), dtype=np.float32)
    gain = np.float32(wet)
    send = np.empty(hop, dtype=np.float32)
    for start in range(0, frames, hop):
        end = min(frames, start + hop)
        # A mono send into the decorrelated stereo room, as on a console: three FFTs a
        # hop instead of four.
        mono = send[: end - start]
        np.add(mix[start:end, 0], mix[start:end, 1], out=mono)
        mono *= np.float32(0.5)
        heard = scipy.fft.rfft(mono, nfft)
        tail = scipy.fft.irfft(heard[:, None] * spectrum, nfft, axis=0)
        pending += tail
        room = pending[: end - start]
        room *= gain
        if room_sink is not None:
            room_sink(room)
        # Safe in place: later hops read only frames from ``end`` on.
        mix[start:end] += room
        on_final(start, end)
        pending[: nfft - hop] = pending[hop:]
        pending[nfft - hop :] = 0.0
        checkpoint(end / frames)


class _GainSolver:
    """Finds the master gain whose dynamics-processed result is at the target loudness.

    The loudness after a gain envelope is predicted from K-weighted powers per knot
    (1.4 ms): each is scaled by the mean square of the gain ramp over its sub-block,
    then summed into 100 ms hops and gated as usual. Per-hop powers would not do: the
    limiter pulls the gain down exactly where a hop's energy is (the transients), and
    that correlation made hop-level predictions up to 0.4 LU too loud.
    """

    def __init__(
        self,
        powers: Powers,
        peaks: npt.NDArray[np.float32],
        shape: Knots,
        threshold: float,
        sample_rate: int,
        r: int,
    ) -> None:
        self.powers = powers  # K-weighted power per sub-block
        self.shape = shape  # fades x compressor (or ones), per knot
        self.allowed = knot_limits(peaks, threshold)
        self.attack, self.hold = limiter_knots(sample_rate, r)
        self.per_hop = quantum_frames(sample_rate) // r

    def limiting(self, gain: float) -> Knots:
        """The limiter's own gain (<= 1) at master gain ``gain``."""
        base = gain * self.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            allowed = np.where(base > 0, self.allowed / np.maximum(base, 1e-30), np.inf)
        return limiter_gain(allowed, self.attack, self.hold)

    def knots(self, gain: float) -> Knots:
        """The whole envelope: gain x shape x limiting."""
        return gain * self.shape * self.limiting(gain)

    def loudness(self, knots: Knots) -> float:
        """Predicted integrated loudness of the signal times ``knots`` (interpolated)."""
        n = self.powers.size
        left, right = knots[:n], knots[1 : n + 1]
        # Mean of the squared linear ramp from left to right over the sub-block.
        weighted = self.powers * (left * left + left * right + right * right) / 3.0
        hops = n // self.per_hop
        if hops < HOPS_PER_BLOCK:
            return lufs(float(np.mean(weighted))) if n else -math.inf
        return gated_loudness(weighted[: hops * self.per_hop].reshape(hops, -1).mean(axis=1))

    def solve(self, start_db: float, target: float) -> tuple[float, Knots]:
        """Secant search on the gain (dB); a few steps land within 0.01 LU."""
        x0 = start_db
        y0 = self.loudness(self.knots(10 ** (x0 / 20))) - target
        x1 = x0 - y0
        best = (abs(y0), x0)
        for _ in range(8):
            y1 = self.loudness(self.knots(10 ** (x1 / 20))) - target
            best = min(best, (abs(y1), x1))
            if abs(y1) < 0.01 or not math.isfinite(y1):
                break
            slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 1.0
            # Limiting flattens the curve; never trust a slope that would overshoot wildly.
            slope = min(1.0, max(0.1, slope))
            x0, y0, x1 = x1, y1, x1 - y1 / slope
        gain_db = best[1]
        return gain_db, self.knots(10 ** (gain_db / 20))


def master_mix(
    mix: PCM,
    sample_rate: int,
    *,
    room: float,
    fade_out_s: float,
    checkpoint: Checkpoint,
    fade_in_s: float = FADE_IN_SECONDS,
    room_sink: RoomSink | None = None,
    target_lufs: float = TARGET_LUFS,
    ceiling_dbfs: float = CEILING_DBFS,
    edge_below_db: float | None = None,
) -> Mastered:
    """Room, fades, compression, limiting and loudness normalisation of ``mix``, in place.

    ``edge_below_db`` (focus segments): level the first and last second to that far under
    the loudness (``edge_gain``)."""
    frames = mix.shape[0]
    r = knot_frames(sample_rate)
    block = block_frames(frames, sample_rate)
    threshold = 10.0 ** (ceiling_dbfs / 20.0) * _CEILING_MARGIN
    # Half-rate K-weighting is enough to choose the gain (it shifts the prediction by a
    # few hundredths of a LU); the loudness reported is measured at full rate.
    analysis = _Analysis(sample_rate, r, decimate=2)
    analysed = 0

    def on_final(start: int, end: int) -> None:
        nonlocal analysed
        while analysed < end and (end - analysed >= block or end == frames):
            stop = min(end, analysed + block)
            analysis.add(mix[analysed:stop])
            analysed = stop

    add_room(mix, room, sample_rate, on_final, room_sink, lambda f: checkpoint(0.45 * f))
    before = analysis.meter.integrated()
    if not math.isfinite(before) or before < _SILENCE_LUFS:
        raise SilentAudio("the mix is silent")

    powers = analysis.meter.span_powers()
    compression = compressor_gain(powers, sample_rate, r)
    fades = fade_gain(frames, r, sample_rate, fade_in_s, fade_out_s)
    if edge_below_db is not None:
        head_db, tail_db = edge_levels_db(mix, sample_rate, fade_in_s, fade_out_s)
        target_db = before - edge_below_db  # in the mix's RMS dB, before any gain
        fades = fades * edge_gain(fades.size, sample_rate, r, head_db, tail_db, target_db)
    solver = _GainSolver(
        powers,
        analysis.peaks(),
        fades * compression,
        threshold,
        sample_rate,
        r,
    )
    gain_db, knots = solver.solve(target_lufs - before, target_lufs)
    envelope = Envelope(frames, r)
    total_gain_db = gain_db
    max_limiting = _max_reduction_db(solver.limiting(10 ** (gain_db / 20)))
    measured = -math.inf
    peak = 0.0
    rounds = 0
    for rounds in range(1, _MAX_ROUNDS + 1):
        envelope = envelope.with_factor(knots)
        band = (0.45 + 0.5 * (rounds - 1) / _MAX_ROUNDS, 0.45 + 0.5 * rounds / _MAX_ROUNDS)
        check = _Analysis(sample_rate, r)
        single = Envelope(frames, r, [knots])
        for start, end in spans(frames, block):
            mix[start:end] *= single.block(start, end)[:, None]
            check.add(mix[start:end])
            checkpoint(band[0] + (band[1] - band[0]) * end / frames)
        measured, peak = check.meter.integrated(), check.peak
        error = target_lufs - measured
        if not math.isfinite(error) or abs(error) <= _TOLERANCE_LU or rounds == _MAX_ROUNDS:
            break
        # The prediction missed: solve again on the signal as it now is (no fades or
        # compression this time, they are applied already).
        solver = _GainSolver(
            check.meter.span_powers(),
            check.peaks(),
            np.ones(single.factors[0].size),
            threshold,
            sample_rate,
            r,
        )
        step_db, knots = solver.solve(error, target_lufs)
        total_gain_db += step_db
    # What is left (the half-rate analysis reads a few hundredths of a LU high) is closed
    # with a constant gain: always when turning down, when turning up only within the
    # headroom left under the ceiling. A constant gain moves the loudness by exactly its dB.
    trim_db = target_lufs - measured if math.isfinite(measured) else 0.0
    if trim_db > 0 and peak > 0:
        trim_db = min(trim_db, 20.0 * math.log10(threshold / peak))
    if abs(trim_db) >= _TRIM_MIN_LU:
        trim = np.float32(10.0 ** (trim_db / 20.0))
        for start, end in spans(frames, block):
            mix[start:end] *= trim
        envelope = envelope.scaled(float(trim))
        measured += trim_db
        peak *= float(trim)
        total_gain_db += trim_db
    checkpoint(1.0)
    report = MasterReport(
        integrated_lufs=round(measured, 2),
        peak_dbfs=round(20.0 * math.log10(peak), 2) if peak > 0 else -math.inf,
        gain_db=round(total_gain_db, 2),
        max_compression_db=round(_max_reduction_db(compression), 2),
        max_limiting_db=round(max_limiting, 2),
        rounds=rounds,
    )
    return Mastered(report=report, envelope=envelope)


def _max_reduction_db(gain: Knots) -> float:
    finite = gain[np.isfinite(gain) & (gain > 0)]
    if finite.size == 0:
        return 0.0
    return max(0.0, -20.0 * math.log10(float(min(1.0, finite.min()))))
