"""PCM blocks -> encoded files (MP3 by default) whose decoded length is exactly the target.

Several outputs (the master and its stems) are written in one pass: every source yields
its next block in turn, so each block of the shared gain envelope is computed once.
Files are written to hidden temporary names and renamed into place, so a failed or
cancelled encoder never leaves a half-written or zero-byte file under a final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soundfile as sf

from musicstudio.engines.studio.audio import PCM, Checkpoint, to_int16
from musicstudio.engines.studio.blocks_mp3 import (
    BITRATE_KBPS,
    QUALITY,
    LameWriter,
    lameenc_module,
    lameenc_version,
)
from musicstudio.engines.studio.blocks_resample import StreamResampler

log = logging.getLogger(__name__)

# Re-encode once if the decoded length is off by more than this (seconds).
_LENGTH_TOLERANCE_S = 0.002
# libsndfile's Ogg encoders have crashed on one huge write: never hand it more than this.
_MAX_WRITE_FRAMES = 65536


class EncodeError(Exception):
    """The encoder could not produce a readable file."""


@dataclass(frozen=True)
class OutputFormat:
    """How one output format is written."""

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
    # With lameenc: CBR 192 kbit/s (see blocks_mp3). The libsndfile fallback: LAME VBR at
    # level 0.1, ~185 kbit/s; its speed hardly depends on the level.
    "mp3": OutputFormat("mp3", "MP3", "MPEG_LAYER_III", "audio/mpeg", "mp3", None, 0.1, "VARIABLE"),
    "wav": OutputFormat("wav", "WAV", "PCM_16", "audio/wav", "wav"),
    # Level 0: the fastest setting, 3-4x faster than the default for ~8 % more bytes.
    "flac": OutputFormat("flac", "FLAC", "PCM_16", "audio/flac", "flac", None, 0.0),
    "ogg": OutputFormat("ogg", "OGG", "VORBIS", "audio/ogg", "ogg"),
    # libsndfile's Opus encoder only accepts 8/12/16/24/48 kHz.
    "opus": OutputFormat("opus", "OGG", "OPUS", "audio/ogg", "opus", 48000),
}

# Stems are lossless: FLAC, or WAV when the master is WAV. Encoding four or five stems as
# MP3 would cost four or five times the master's encode (the biggest stage after
# synthesis); FLAC level 0 costs a fifth of an MP3 encode per stem.
_STEM_FORMATS = {"wav": "wav"}


def stem_format(master_format: str) -> OutputFormat:
    """The format stems are written in for a master in ``master_format``."""
    return FORMATS[_STEM_FORMATS.get(master_format, "flac")]


def mp3_encoder() -> str:
    """Which MP3 encoder this process uses (recorded in the recipe)."""
    if lameenc_module() is not None:
        return f"lameenc {lameenc_version() or '?'} (LAME CBR {BITRATE_KBPS} kbit/s, -q {QUALITY})"
    return f"libsndfile {sf.__libsndfile_version__} (LAME VBR)"


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


# Float32 in [-1, 1], or int16 already scaled (stems arrive that way: one pass less).
Block = npt.NDArray[np.float32] | npt.NDArray[np.int16]
Source = Callable[[], Iterator[Block]]


@dataclass(frozen=True)
class Output:
    """One file to write: where, in which format, and a re-startable source of blocks."""

    path: Path
    fmt: OutputFormat
    source: Source


class Writer(Protocol):
    """An open encoder: blocks in, then close (or abort)."""

    def write(self, block: Block) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class _SndWriter:
    """libsndfile, chunked; 16-bit formats get int16 (libsndfile's float path is slow)."""

    def __init__(self, path: Path, fmt: OutputFormat, rate: int) -> None:
        self._int16 = fmt.subtype == "PCM_16"
        self._file = sf.SoundFile(
            str(path),
            mode="w",
            samplerate=rate,
            channels=2,
            subtype=fmt.subtype,
            format=fmt.container,
            compression_level=fmt.compression_level,
            bitrate_mode=fmt.bitrate_mode,
        )

    def write(self, block: Block) -> None:
        for start in range(0, block.shape[0], _MAX_WRITE_FRAMES):
            chunk = block[start : start + _MAX_WRITE_FRAMES]
            if self._int16 and chunk.dtype != np.int16:
                chunk = to_int16(chunk.astype(np.float32, copy=False))
            self._file.write(np.ascontiguousarray(chunk))

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()


class _Fitted:
    """Resamples if needed and trims or pads the stream to exactly ``target`` frames."""

    def __init__(self, writer: Writer, target: int, resampler: StreamResampler | None) -> None:
        self._writer = writer
        self._target = target
        self._resampler = resampler
        self._written = 0

    def _emit(self, block: Block) -> None:
        block = block[: max(0, self._target - self._written)]
        if block.shape[0]:
            self._writer.write(block)
            self._written += block.shape[0]

    def write(self, block: Block) -> None:
        self._emit(self._resampler.push(block) if self._resampler else block)

    def close(self) -> None:
        if self._resampler is not None:
            self._emit(self._resampler.finish())
        if self._written < self._target:
            self._emit(np.zeros((self._target - self._written, 2), dtype=np.float32))
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _open(output: Output, rate: int, target: int) -> _Fitted:
    out_rate = output.fmt.sample_rate or rate
    tmp = _temp_path(output.path)
    writer: Writer
    if output.fmt.key == "mp3" and lameenc_module() is not None:
        writer = LameWriter(tmp, out_rate)
    else:
        writer = _SndWriter(tmp, output.fmt, out_rate)
    resampler = StreamResampler(rate, out_rate) if out_rate != rate else None
    return _Fitted(writer, target, resampler)


def _frames_of(path: Path) -> int:
    return int(sf.info(str(path)).frames)


def _run(
    outputs: Sequence[Output],
    rate: int,
    duration_seconds: float,
    frames: int,
    checkpoint: Checkpoint,
    adjust: Sequence[int],
    seconds: list[float],
) -> None:
    """Write every output in lockstep to its temporary path, timing each one."""
    writers: list[_Fitted] = []
    try:
        for output, delta in zip(outputs, adjust, strict=True):
            target = round(duration_seconds * (output.fmt.sample_rate or rate))
            writers.append(_open(output, rate, max(1, target - delta)))
        sources = [o.source() for o in outputs]
        clock = time.perf_counter
        done = 0
        while done < frames:
            for i, (writer, source) in enumerate(zip(writers, sources, strict=True)):
                started = clock()
                block = next(source)
                writer.write(block)
                seconds[i] += clock() - started
            done += block.shape[0]
            checkpoint(0.97 * done / max(1, frames))
        for i, writer in enumerate(writers):
            started = clock()
            writer.close()
            seconds[i] += clock() - started
    except BaseException:
        for writer in writers:
            writer.abort()
        for output in outputs:
            with contextlib.suppress(OSError):
                _temp_path(output.path).unlink()
        raise


def encode_outputs(
    outputs: Sequence[Output],
    sample_rate: int,
    duration_seconds: float,
    checkpoint: Checkpoint,
    seconds: list[float] | None = None,
) -> list[EncodedAudio]:
    """Encode every output so each decodes to ``duration_seconds`` of audio.

    The decoded length of each file is measured after writing; if an encoder added or
    dropped frames (MP3 padding in some libsndfile builds), that output's stream is
    trimmed or padded by the difference and written once more. ``seconds``, if given,
    receives the wall time spent on each output (its source and its encoder).
    """
    frames = round(duration_seconds * sample_rate)
    timing = [0.0] * len(outputs)
    for output in outputs:
        output.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run(outputs, sample_rate, duration_seconds, frames, checkpoint, [0] * len(outputs), timing)
        results: list[EncodedAudio] = []
        for output in outputs:
            rate = output.fmt.sample_rate or sample_rate
            target = round(duration_seconds * rate)
            tmp = _temp_path(output.path)
            decoded = _frames_of(tmp)
            error = decoded - target
            if abs(error) > _LENGTH_TOLERANCE_S * rate:
                log.info("encoder changed the length by %d frames; compensating", error)
                retry = [0.0]
                _run(
                    [output], sample_rate, duration_seconds, frames, lambda f: None, [error], retry
                )
                timing[outputs.index(output)] += retry[0]
                decoded = _frames_of(tmp)
            os.replace(tmp, output.path)
            results.append(EncodedAudio(output.path, output.fmt.mime_type, rate, decoded))
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        for output in outputs:
            with contextlib.suppress(OSError):
                _temp_path(output.path).unlink()
        raise EncodeError("could not encode the audio") from exc
    if seconds is not None:
        seconds[:] = timing
    checkpoint(1.0)
    return results


def encode(
    pcm: PCM,
    sample_rate: int,
    path: Path,
    format_key: str,
    duration_seconds: float,
    checkpoint: Checkpoint,
    block: int = 66150,
) -> EncodedAudio:
    """Encode one in-memory array (a convenience over ``encode_outputs``)."""
    fmt = FORMATS.get(format_key)
    if fmt is None:
        raise EncodeError(f"unsupported format {format_key!r}")

    def source() -> Iterator[PCM]:
        frames = round(duration_seconds * sample_rate)
        for start in range(0, frames, block):
            chunk = pcm[start : start + block]
            end = min(frames, start + block)
            if chunk.shape[0] < end - start:  # shorter than asked: pad with silence
                chunk = np.concatenate(
                    [chunk, np.zeros((end - start - chunk.shape[0], 2), np.float32)]
                )
            yield chunk

    return encode_outputs([Output(path, fmt, source)], sample_rate, duration_seconds, checkpoint)[0]
