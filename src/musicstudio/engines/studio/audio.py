"""Shared audio conventions: sample rate, the PCM array type, blocks and the checkpoint callback.

Everything after composition works block by block (render, mix, master, encode), so a
long track never needs more than one full-length buffer (the mix) in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 44100
# Float32 stereo, shape (frames, 2), C-ordered (interleaved in memory).
PCM = npt.NDArray[np.float32]
Mono = npt.NDArray[np.float32]
# Called with the fraction of the current stage done; raises RenderCancelled to stop.
Checkpoint = Callable[[float], None]

# Processing blocks are whole multiples of this many frames (100 ms at 44.1 kHz): the
# loudness meter's hop and the limiter's gain grid then never straddle two blocks.
BLOCK_QUANTUM = 4410
# 1.5 s blocks: long enough that per-call numpy/scipy overhead is noise, short enough
# that a block of every stem at once is a few MB.
MAX_BLOCK_QUANTA = 15
# At least this many blocks per pass, so a short track still reports progress finely.
MIN_BLOCKS = 16


def block_frames(total_frames: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames per processing block for a track of ``total_frames``.

    A multiple of 100 ms (``sample_rate // 10``), between 100 ms and 1.5 s, and small
    enough to give at least ``MIN_BLOCKS`` blocks when the track is long enough.
    """
    quantum = quantum_frames(sample_rate)
    quanta = math.ceil(total_frames / MIN_BLOCKS / quantum)
    return quantum * max(1, min(MAX_BLOCK_QUANTA, quanta))


def quantum_frames(sample_rate: int = SAMPLE_RATE) -> int:
    """100 ms of frames: the hop of the loudness meter and the unit of block sizes."""
    if sample_rate % 100:
        raise ValueError("the sample rate must be a multiple of 100 Hz")
    return sample_rate // 10


def spans(total_frames: int, block: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of consecutive blocks covering ``total_frames``."""
    for start in range(0, total_frames, block):
        yield start, min(total_frames, start + block)


def to_int16(block: PCM, out: npt.NDArray[np.int16] | None = None) -> npt.NDArray[np.int16]:
    """Float samples in [-1, 1] to 16-bit PCM, rounded and clipped.

    Done here rather than by libsndfile: its float path costs ~30 ms per stereo minute,
    this ~10 ms.
    """
    scaled = np.multiply(block, np.float32(32767.0))
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    if out is None:
        return scaled.astype(np.int16)
    out[...] = scaled
    return out
