"""MP3 written block by block with LAME through ``lameenc``, with a gapless Info/LAME tag.

libsndfile's MP3 encoder runs at ~25x real time on this project's machines whatever its
settings (its LAME is built in, at its default algorithm quality); ``lameenc`` exposes
LAME's quality knob and at ``-q 7`` encodes ~8x faster at the same bitrate (numbers in
docs/benchmarks.md). ``lameenc`` is optional: without it the engine falls back to
libsndfile.

``lameenc`` returns bare MP3 frames. Decoders then cannot know LAME's encoder delay and
end padding, so the decoded file would be ~1,100 frames longer than the audio and start
25 ms late. A leading Info frame with the LAME extension (the format LAME itself writes)
records them; mpg123 (libsndfile's decoder), browsers and ffmpeg trim accordingly and
the decoded length is exact.
"""

from __future__ import annotations

import importlib
import importlib.util
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from musicstudio.engines.studio.audio import PCM, to_int16

# 256 rather than 192 kbit/s: at 192 LAME's joint stereo dropped the decoded loudness by
# ~0.25 LU on our renders (side energy), at 256 by < 0.01; the speed is the same.
BITRATE_KBPS = 256
# LAME's algorithm quality: 7 skips the slowest psychoacoustic searches; at 256 kbit/s
# the difference from the default (3) is hard to hear and encoding is ~3x faster.
QUALITY = 7
ENCODER_DELAY = 576  # LAME's fixed encoder delay (samples), before the decoder's own
_SAMPLES_PER_FRAME = 1152
# MPEG-1 Layer III bitrate and sample-rate tables (index -> value).
_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_RATES = (44100, 48000, 32000)
_SIDE_INFO_STEREO = 32
_TAG_CRC_SPAN = 190  # the LAME tag's CRC covers the first 190 bytes of the frame


def lameenc_module() -> Any:
    """The ``lameenc`` module, or None when it is not installed."""
    if importlib.util.find_spec("lameenc") is None:
        return None
    try:
        return importlib.import_module("lameenc")
    except Exception:  # a broken binary wheel
        return None


def lameenc_version() -> str | None:
    """The installed ``lameenc`` version, for the recipe."""
    try:
        from importlib.metadata import version

        return version("lameenc")
    except Exception:
        return None


def frame_bytes(bitrate_kbps: int, sample_rate: int, padded: bool = False) -> int:
    """Length of one MPEG-1 Layer III frame."""
    return 144_000 * bitrate_kbps // sample_rate + (1 if padded else 0)


def count_frames(data: bytes, sample_rate: int) -> int:
    """Number of MPEG-1 Layer III frames in ``data`` (walking the frame headers)."""
    pos = 0
    count = 0
    while pos + 4 <= len(data):
        b0, b1, b2 = data[pos], data[pos + 1], data[pos + 2]
        if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
            raise ValueError("not an MPEG audio frame")
        bitrate = _BITRATES[b2 >> 4]
        pos += frame_bytes(bitrate, sample_rate, bool(b2 & 0x02))
        count += 1
    return count


def _crc16(data: bytes) -> int:
    """CRC-16 (polynomial 0x8005, reflected, initial 0), as the LAME tag uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def info_frame(
    *,
    bitrate_kbps: int,
    sample_rate: int,
    audio_frames: int,
    total_bytes: int,
    delay: int,
    padding: int,
) -> bytes:
    """A silent CBR frame carrying the Xing "Info" header and the LAME extension.

    ``audio_frames`` and ``total_bytes`` describe the whole file; ``delay`` and ``padding``
    are the samples the decoder must drop at the start and the end.
    """
    size = frame_bytes(bitrate_kbps, sample_rate)
    frame = bytearray(size)
    rate_index = _RATES.index(sample_rate)
    # Sync, MPEG-1, Layer III, no CRC; bitrate and rate indexes; joint stereo, "original".
    frame[0:4] = bytes([0xFF, 0xFB, _BITRATES.index(bitrate_kbps) << 4 | rate_index << 2, 0x44])
    at = 4 + _SIDE_INFO_STEREO
    frame[at : at + 4] = b"Info"  # "Info" rather than "Xing": constant bitrate
    frame[at + 4 : at + 8] = struct.pack(">I", 0x0F)  # frames, bytes, TOC and quality present
    frame[at + 8 : at + 12] = struct.pack(">I", audio_frames)
    frame[at + 12 : at + 16] = struct.pack(">I", total_bytes)
    # Seek table: at constant bitrate, i % of the time is i % of the bytes.
    frame[at + 16 : at + 116] = bytes(i * 256 // 100 for i in range(100))
    frame[at + 116 : at + 120] = struct.pack(">I", 100 - 10 * QUALITY)
    lame = at + 120
    frame[lame : lame + 9] = b"LAME3.100"
    frame[lame + 9] = 0x01  # tag revision 0, CBR
    frame[lame + 20] = min(255, bitrate_kbps)
    frame[lame + 21 : lame + 24] = bytes(
        [delay >> 4 & 0xFF, (delay & 0x0F) << 4 | (padding >> 8 & 0x0F), padding & 0xFF]
    )
    frame[lame + 24] = {32000: 0, 44100: 1, 48000: 2}[sample_rate] << 6
    frame[lame + 28 : lame + 32] = struct.pack(">I", total_bytes)
    frame[_TAG_CRC_SPAN : _TAG_CRC_SPAN + 2] = struct.pack(
        ">H", _crc16(bytes(frame[:_TAG_CRC_SPAN]))
    )
    return bytes(frame)


class LameWriter:
    """Streams float32 stereo blocks into a constant-bitrate MP3 file at ``path``."""

    def __init__(self, path: Path, sample_rate: int, bitrate_kbps: int = BITRATE_KBPS) -> None:
        module = lameenc_module()
        if module is None:
            raise RuntimeError("lameenc is not installed")
        if sample_rate not in _RATES:
            raise ValueError("MPEG-1 Layer III needs 32, 44.1 or 48 kHz")
        self._rate = sample_rate
        self._bitrate = bitrate_kbps
        self._encoder = module.Encoder()
        self._encoder.set_channels(2)
        self._encoder.set_in_sample_rate(sample_rate)
        self._encoder.set_bit_rate(bitrate_kbps)
        self._encoder.set_quality(QUALITY)
        self._samples = 0
        self._file: BinaryIO = open(path, "w+b")  # noqa: SIM115 - closed in close()/abort()
        # Room for the Info frame, written last (it needs the frame count).
        self._file.write(bytes(frame_bytes(bitrate_kbps, sample_rate)))

    def write(self, block: PCM | npt.NDArray[np.int16]) -> None:
        """Encode the next block (float32 in [-1, 1] or int16)."""
        self._samples += block.shape[0]
        pcm = block if block.dtype == np.int16 else to_int16(block.astype(np.float32, copy=False))
        self._file.write(self._encoder.encode(np.ascontiguousarray(pcm)))

    def close(self) -> None:
        """Flush LAME, then fill in the Info frame at the start of the file."""
        try:
            tag_size = frame_bytes(self._bitrate, self._rate)
            self._file.write(self._encoder.flush())
            self._file.flush()
            total = self._file.tell()
            self._file.seek(tag_size)
            frames = count_frames(self._file.read(), self._rate)
            padding = frames * _SAMPLES_PER_FRAME - ENCODER_DELAY - self._samples
            if not 0 <= padding < 4096:  # the 12-bit field; LAME never pads that much
                raise ValueError("unexpected MP3 padding")
            self._file.seek(0)
            self._file.write(
                info_frame(
                    bitrate_kbps=self._bitrate,
                    sample_rate=self._rate,
                    audio_frames=frames,
                    total_bytes=total,
                    delay=ENCODER_DELAY,
                    padding=padding,
                )
            )
        finally:
            self._file.close()

    def abort(self) -> None:
        """Close without finishing (the caller deletes the file)."""
        self._file.close()
