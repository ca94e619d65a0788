"""Render each part on its own, level it against the others, and sum the mix.

General MIDI banks disagree wildly on instrument levels (a piano can sit 15 dB under a
bass in one bank and above it in another), so channel volumes alone cannot balance a
mix. Each part is measured with a cheap loudness estimate and set to a level relative to
its role. Rendering per part also keeps the door open for stems.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import signal

from musicstudio.engines.studio.audio import PCM, SAMPLE_RATE, Checkpoint
from musicstudio.engines.studio.plan import Part

# Target level per role relative to the drums (dB of weighted, gated RMS).
ROLE_LEVEL_DB: dict[str, float] = {
    "drums": 0.0,
    "bass": -2.0,
    "melody": -2.0,
    "chords": -5.0,
    "pad": -11.0,
}
_REFERENCE_DB = -20.0
_MAX_GAIN_DB = 30.0
_GATE_DB = 30.0
_BLOCK_SECONDS = 0.4

RenderPart = Callable[[Part, Checkpoint], PCM]


def part_level_db(pcm: PCM, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Gated RMS (dB) after a 120 Hz high-pass; None for silence.

    The high-pass stands in for the ear's low sensitivity to bass; the gate ignores
    blocks more than 30 dB below the loudest, so a sparse part is judged by when it plays.
    """
    if pcm.shape[0] == 0:
        return None
    # Every 4th frame is plenty for a level estimate and makes this four times cheaper;
    # plain decimation aliases, but aliasing moves energy rather than losing it.
    step = 4
    rate = sample_rate / step
    mono = pcm[::step, 0] + pcm[::step, 1]
    sos = signal.butter(2, 120.0, "highpass", fs=rate, output="sos")
    weighted = np.asarray(signal.sosfilt(sos.astype(np.float32), mono), dtype=np.float32)
    block = max(1, min(weighted.size, int(_BLOCK_SECONDS * rate)))
    usable = weighted.size // block * block
    powers = np.mean(np.square(weighted[:usable], dtype=np.float64).reshape(-1, block), axis=1)
    loudest = float(powers.max()) if powers.size else 0.0
    if loudest <= 1e-12:
        return None
    active = powers[powers >= loudest * 10 ** (-_GATE_DB / 10)]
    return 10 * math.log10(float(np.mean(active)))


def mix_parts(
    parts: Sequence[Part],
    render_part: RenderPart,
    total_frames: int,
    checkpoint: Checkpoint,
    levels: dict[str, float] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> PCM:
    """Render every part with ``render_part``, level it by role and sum into one buffer."""
    targets = {**ROLE_LEVEL_DB, **(levels or {})}
    mix = np.zeros((total_frames, 2), dtype=np.float32)
    count = max(1, len(parts))
    for index, part in enumerate(parts):

        def part_checkpoint(fraction: float, index: int = index) -> None:
            checkpoint((index + fraction) / count)

        stem = render_part(part, part_checkpoint)
        level = part_level_db(stem, sample_rate)
        if level is None:
            continue
        target = _REFERENCE_DB + targets.get(part.role, -6.0)
        gain_db = max(-_MAX_GAIN_DB, min(_MAX_GAIN_DB, target - level))
        stem *= np.float32(10 ** (gain_db / 20))
        mix += stem
        del stem
    checkpoint(1.0)
    return mix
