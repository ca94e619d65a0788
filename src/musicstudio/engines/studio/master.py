"""Basic mastering: a little room, high-pass, fades, loudness to -14 LUFS, a peak limiter.

All stages work in float32 on (frames, 2) arrays and are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyloudnorm
from scipy import ndimage, signal

from musicstudio.engines.studio.audio import PCM, Checkpoint

TARGET_LUFS = -14.0
CEILING_DBFS = -1.0
# Lossy encoders add up to ~0.6 dB of overshoot; this keeps decoded MP3 peaks near -1 dBFS.
LOSSY_CEILING_DBFS = -1.5
HIGHPASS_HZ = 30.0
FADE_IN_SECONDS = 0.01
_LOUDNESS_BLOCK_SECONDS = 0.4
_SILENCE_LUFS = -70.0


class SilentAudio(ValueError):
    """The mix has no measurable signal, so it cannot be normalised."""


@dataclass(frozen=True)
class MasterReport:
    """Measurements taken after mastering."""

    integrated_lufs: float
    peak_dbfs: float
    gain_db: float


def fade_out_seconds(duration_seconds: float) -> float:
    """Fade-out length: 8 % of the track, between 50 ms and 3 s."""
    return max(0.05, min(3.0, 0.08 * duration_seconds))


@lru_cache(maxsize=2)
def _room_impulse(sample_rate: int) -> PCM:
    """A decorrelated stereo reverb tail: darkened noise with a 1.4 s exponential decay."""
    rng = np.random.default_rng(0xA11CE)
    length = int(1.6 * sample_rate)
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


def add_room(pcm: PCM, wet: float, sample_rate: int) -> PCM:
    """Mix in ``wet`` of a synthetic room reverb, in place (a dry GM render sounds boxy)."""
    if wet <= 0 or pcm.shape[0] == 0:
        return pcm
    ir = _room_impulse(sample_rate)
    frames = pcm.shape[0]
    for ch in range(2):
        if frames <= 60 * sample_rate:
            tail = signal.fftconvolve(pcm[:, ch], ir[:, ch])[:frames]
        else:  # overlap-add keeps the FFTs (and memory) small for long tracks
            tail = signal.oaconvolve(pcm[:, ch], ir[:, ch])[:frames]
        # Safe in place: each channel's reverb depends only on that channel.
        pcm[:, ch] += np.float32(wet) * tail.astype(np.float32, copy=False)
        del tail
    return pcm


def highpass(pcm: PCM, sample_rate: int, cutoff_hz: float = HIGHPASS_HZ) -> PCM:
    """Remove sub-bass rumble and DC, in place: they waste headroom without being heard."""
    sos = signal.butter(2, cutoff_hz, "highpass", fs=sample_rate, output="sos").astype(np.float32)
    for ch in range(pcm.shape[1]):  # per channel, so only one channel is ever copied
        pcm[:, ch] = signal.sosfilt(sos, pcm[:, ch])
    return pcm


def apply_fades(pcm: PCM, sample_rate: int, fade_in_s: float, fade_out_s: float) -> PCM:
    """Short raised-cosine fade-in (no click) and a fade-out so every clip ends; in place."""
    frames = pcm.shape[0]
    n_in = min(frames, max(1, int(fade_in_s * sample_rate)))
    n_out = min(frames, max(1, int(fade_out_s * sample_rate)))
    ramp_in = 0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n_in, dtype=np.float64))
    ramp_out = 0.5 + 0.5 * np.cos(np.linspace(0.0, math.pi, n_out, dtype=np.float64))
    pcm[:n_in] *= ramp_in.astype(np.float32)[:, None]
    pcm[frames - n_out :] *= ramp_out.astype(np.float32)[:, None]
    return pcm


def integrated_lufs(pcm: PCM, sample_rate: int) -> float:
    """BS.1770 integrated loudness; -inf for silence.

    pyloudnorm needs at least one 400 ms gating block, so shorter audio gets an
    ungated mean-square estimate instead.
    """
    if pcm.shape[0] == 0 or not np.any(pcm):
        return -math.inf
    if pcm.shape[0] <= int(_LOUDNESS_BLOCK_SECONDS * sample_rate) + 1:
        power = float(np.sum(np.mean(np.square(pcm, dtype=np.float64), axis=0)))
        return -0.691 + 10.0 * math.log10(power) if power > 0 else -math.inf
    meter = pyloudnorm.Meter(sample_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(meter.integrated_loudness(pcm))
    return value if math.isfinite(value) else -math.inf


def peak_dbfs(pcm: PCM) -> float:
    """Sample peak in dBFS (-inf for silence)."""
    peak = float(np.max(np.abs(pcm))) if pcm.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def limit(
    pcm: PCM, ceiling: float, sample_rate: int, attack_s: float = 0.005, hold_s: float = 0.04
) -> PCM:
    """Look-ahead brick-wall limiter, in place: no sample exceeds ``ceiling`` (stereo-linked).

    The gain each sample needs is min-filtered over ``[n - hold - a, n + a]`` and then
    averaged over ``[n - a, n + a]``. Every value in that average comes from a window
    containing ``n``, so the smoothed gain never exceeds what ``n`` needs, while it ramps
    down over ``a`` samples before a peak instead of distorting it with a jump.
    """
    if pcm.shape[0] == 0:
        return pcm
    # Per-frame stereo peak; two contiguous column passes beat a strided axis=1 reduction.
    peak = np.maximum(np.abs(pcm[:, 0]), np.abs(pcm[:, 1]))
    if float(peak.max()) <= ceiling:
        return pcm
    need = np.minimum(np.float32(1.0), np.float32(ceiling) / np.maximum(peak, np.float32(1e-9)))
    a = max(1, int(attack_s * sample_rate))
    h = max(0, int(hold_s * sample_rate))
    size = h + 2 * a + 1
    # A positive origin shifts the window left: centred on n - h/2 it covers [n-h-a, n+a].
    held = ndimage.minimum_filter1d(need, size=size, origin=h // 2, mode="nearest")
    smooth = ndimage.uniform_filter1d(held, size=2 * a + 1, mode="nearest")
    del held
    np.minimum(smooth, need, out=smooth)
    pcm *= smooth[:, None]
    return pcm


def master(
    pcm: PCM,
    sample_rate: int,
    *,
    room: float,
    duration_seconds: float,
    checkpoint: Checkpoint,
    target_lufs: float = TARGET_LUFS,
    ceiling_dbfs: float = CEILING_DBFS,
) -> tuple[PCM, MasterReport]:
    """Room, high-pass, fades, loudness normalisation and limiting; measured afterwards.

    Works in place on ``pcm`` (a 10-minute track is 200 MB per copy).
    """
    x = add_room(pcm, room, sample_rate)
    checkpoint(0.2)
    x = highpass(x, sample_rate)
    x = apply_fades(x, sample_rate, FADE_IN_SECONDS, fade_out_seconds(duration_seconds))
    checkpoint(0.35)
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    # Limit a hair under the ceiling so float rounding can never poke above it.
    threshold = ceiling * 0.995
    loudness = integrated_lufs(x, sample_rate)
    if not math.isfinite(loudness) or loudness < _SILENCE_LUFS:
        raise SilentAudio("the mix is silent")
    total_gain_db = target_lufs - loudness
    x *= np.float32(10.0 ** (total_gain_db / 20.0))
    x = limit(x, threshold, sample_rate)
    checkpoint(0.6)
    # Limiting lowers loudness a little; up to two make-up passes get within 0.2 LU.
    measured: float | None = None
    for step in range(2):
        measured = integrated_lufs(x, sample_rate)
        correction = target_lufs - measured
        if not math.isfinite(correction) or abs(correction) < 0.2:
            break
        total_gain_db += correction
        x *= np.float32(10.0 ** (correction / 20.0))
        x = limit(x, threshold, sample_rate)
        measured = None
        checkpoint(0.6 + 0.15 * (step + 1))
    peak = float(np.max(np.abs(x)))
    if peak > ceiling:  # never expected after the limiter; a last guarantee
        x *= np.float32(threshold / peak)
        measured = None
    if measured is None:  # something changed since the last measurement
        measured = integrated_lufs(x, sample_rate)
    report = MasterReport(
        integrated_lufs=round(measured, 2),
        peak_dbfs=round(peak_dbfs(x), 2),
        gain_db=round(total_gain_db, 2),
    )
    checkpoint(1.0)
    return x, report
