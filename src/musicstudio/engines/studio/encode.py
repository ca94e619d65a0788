"""PCM -> an encoded file (MP3 by default) whose decoded length is exactly the target.

Files are written in chunks to a hidden temporary name and renamed into place, so a
failed encoder never leaves a half-written or zero-byte file under the final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from musicstudio.engines.studio.audio import PCM, Checkpoint

log = logging.getLogger(__name__)

CHUNK_FRAMES = 65536
# Re-encode once if the decoded length is off by more than this (seconds).
_LENGTH_TOLERANCE_S = 0.002


class EncodeError(Exception):
    """The encoder could not produce a readable file."""


@dataclass(frozen=True)
class OutputFormat:
    """How one output format is written with libsndfile."""

    key: str
    container: str
    subtype: str
    mime_type: str
    extension: str
    sample_rate: int | None = None  # None: keep the render rate
    compression_level: float | None = None
    bitrate_mode: str | None = None

    @property
    def lossy(self) -> bool:
        """Whether decoding can overshoot the mastered peak (needs extra headroom)."""
        return self.subtype in ("MPEG_LAYER_III", "VORBIS", "OPUS")


FORMATS: dict[str, OutputFormat] = {
    # LAME VBR at level 0.1 averages ~185 kbit/s (about V2, the usual "transparent"
    # setting); lower levels cost size, not time: encoding runs ~35x real time either way.
    "mp3": OutputFormat("mp3", "MP3", "MPEG_LAYER_III", "audio/mpeg", "mp3", None, 0.1, "VARIABLE"),
    "wav": OutputFormat("wav", "WAV", "PCM_16", "audio/wav", "wav"),
    "flac": OutputFormat("flac", "FLAC", "PCM_16", "audio/flac", "flac"),
    "ogg": OutputFormat("ogg", "OGG", "VORBIS", "audio/ogg", "ogg"),
    # libsndfile's Opus encoder only accepts 8/12/16/24/48 kHz.
    "opus": OutputFormat("opus", "OGG", "OPUS", "audio/ogg", "opus", 48000),
}


@dataclass(frozen=True)
class EncodedAudio:
    """The written file and what soundfile reads back from it."""

    path: Path
    mime_type: str
    sample_rate: int
    frames: int

    @property
    def duration_seconds(self) -> float:
        """Decoded length in seconds."""
        return self.frames / self.sample_rate


def _resample(pcm: PCM, source_rate: int, target_rate: int) -> PCM:
    if source_rate == target_rate:
        return pcm
    from math import gcd

    g = gcd(source_rate, target_rate)
    out = signal.resample_poly(pcm, target_rate // g, source_rate // g, axis=0)
    return np.asarray(out, dtype=np.float32)


def _fit(pcm: PCM, frames: int) -> PCM:
    """Trim or zero-pad to exactly ``frames``."""
    if pcm.shape[0] >= frames:
        return pcm[:frames]
    pad = np.zeros((frames - pcm.shape[0], pcm.shape[1]), dtype=np.float32)
    return np.concatenate([pcm, pad])


def _write(pcm: PCM, path: Path, fmt: OutputFormat, rate: int, checkpoint: Checkpoint) -> None:
    tmp = path.with_name(f".{path.name}.part")
    try:
        with sf.SoundFile(
            str(tmp),
            mode="w",
            samplerate=rate,
            channels=pcm.shape[1],
            subtype=fmt.subtype,
            format=fmt.container,
            compression_level=fmt.compression_level,
            bitrate_mode=fmt.bitrate_mode,
        ) as fh:
            # Chunked writes: libsndfile's Ogg encoders have crashed on one huge write.
            total = pcm.shape[0]
            for start in range(0, total, CHUNK_FRAMES):
                fh.write(np.ascontiguousarray(pcm[start : start + CHUNK_FRAMES]))
                checkpoint(min(1.0, (start + CHUNK_FRAMES) / max(1, total)))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _frames_of(path: Path) -> int:
    info = sf.info(str(path))
    return int(info.frames)


def encode(
    pcm: PCM,
    sample_rate: int,
    path: Path,
    format_key: str,
    duration_seconds: float,
    checkpoint: Checkpoint,
) -> EncodedAudio:
    """Encode ``pcm`` to ``path`` so the file decodes to ``duration_seconds`` of audio.

    The decoded length is measured after writing; if the encoder added or dropped
    frames (MP3 padding), the PCM is trimmed or padded by the difference and written once
    more.
    """
    fmt = FORMATS.get(format_key)
    if fmt is None:
        raise EncodeError(f"unsupported format {format_key!r}")
    rate = fmt.sample_rate or sample_rate
    target = round(duration_seconds * rate)
    data = _fit(_resample(pcm, sample_rate, rate), target)
    path.parent.mkdir(parents=True, exist_ok=True)

    def half(lo: float) -> Checkpoint:
        return lambda frac: checkpoint(lo + 0.5 * frac)

    try:
        _write(data, path, fmt, rate, half(0.0))
        frames = _frames_of(path)
        error = frames - target
        if abs(error) > _LENGTH_TOLERANCE_S * rate:
            log.info("encoder changed the length by %d frames; compensating", error)
            _write(_fit(data, max(1, target - error)), path, fmt, rate, half(0.5))
            frames = _frames_of(path)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise EncodeError(f"could not encode {fmt.key}") from exc
    checkpoint(1.0)
    return EncodedAudio(path=path, mime_type=fmt.mime_type, sample_rate=rate, frames=frames)
