"""Shared audio conventions: sample rate, the PCM array type and the checkpoint callback."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 44100
# Float32 stereo, shape (frames, 2), C-ordered (interleaved in memory).
PCM = npt.NDArray[np.float32]
# Called with the fraction of the current stage done; raises RenderCancelled to stop.
Checkpoint = Callable[[float], None]


def block_frames(total_frames: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames between progress/cancel checkpoints: at most 1 s, at least 16 blocks a render."""
    return max(1024, min(sample_rate, math.ceil(total_frames / 16)))
