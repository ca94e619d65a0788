"""Streaming sample-rate conversion (identical to ``scipy.signal.resample_poly`` on the whole).

Used to encode Opus, which libsndfile only accepts at 48 kHz, block by block.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import signal

from musicstudio.engines.studio.audio import PCM


class StreamResampler:
    """Streaming polyphase resampling, identical to ``resample_poly`` on the whole signal.

    Each chunk is resampled with ``pad`` frames of real context on both sides (more than
    the filter's reach) and only its middle is kept; chunk edges fall on multiples of
    ``down`` so the kept outputs line up exactly with the whole-signal ones.
    """

    def __init__(self, source_rate: int, target_rate: int) -> None:
        g = math.gcd(source_rate, target_rate)
        self.up, self.down = target_rate // g, source_rate // g
        reach = 10 * max(self.up, self.down) // self.up + 2  # resample_poly's half filter
        self.pad = math.ceil(reach / self.down) * self.down
        self._buf = np.zeros((self.pad, 2), dtype=np.float32)  # left context: silence
        self._seen = 0

    def _run(self, frames: int, keep: int) -> PCM:
        chunk = self._buf[: self.pad + frames + self.pad]
        out = signal.resample_poly(chunk, self.up, self.down, axis=0)
        first = self.pad * self.up // self.down
        return np.asarray(out[first : first + keep], dtype=np.float32)

    def push(self, block: PCM | npt.NDArray[np.int16]) -> PCM:
        """Resampled output that is final after adding ``block``."""
        if block.dtype == np.int16:
            block = block.astype(np.float32) / np.float32(32768.0)
        self._seen += block.shape[0]
        self._buf = np.concatenate([self._buf, block])
        frames = (self._buf.shape[0] - 2 * self.pad) // self.down * self.down
        if frames <= 0:
            return np.zeros((0, 2), dtype=np.float32)
        out = self._run(frames, frames * self.up // self.down)
        self._buf = self._buf[frames:]
        return out

    def finish(self) -> PCM:
        """The rest of the output (the right edge sees silence, like ``resample_poly``)."""
        rest = self._buf.shape[0] - self.pad
        total = math.ceil(self._seen * self.up / self.down)
        done = (self._seen - rest) * self.up // self.down
        frames = math.ceil(rest / self.down) * self.down
        padding = np.zeros((frames - rest + self.pad, 2), dtype=np.float32)
        self._buf = np.concatenate([self._buf, padding])
        return self._run(frames, total - done)
