"""From an arrangement to files: render parts, mix, master, encode the master and its stems.

Stages, each streamed block by block so that only the mix is ever held whole:

1. **render** each part (one synth instance per part), measure its level and park it on
   disk (``stems.SpillFile``);
2. **mix**: read the parts back, each times its role's gain, into the mix buffer; the
   parts reaching into the sub-bass go through one shared 30 Hz high-pass;
3. **master** the mix in place (``master.master_mix``): room reverb (parked as the
   ``room`` stem), fades, compression, limiting, loudness; it returns the gain envelope;
4. **encode** the master and write the composition as MIDI;
5. later (``PendingStems.encode``, once the master is published), encode every stem
   (part x mix gain [x high-pass] x envelope).

Every stage reports progress through a ``Checkpoint`` (which also raises on cancel) and,
for the benchmark, its wall time through an optional ``StageTimer``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicstudio.engines.studio.audio import (
    PCM,
    SAMPLE_RATE,
    Checkpoint,
    block_frames,
    spans,
)
from musicstudio.engines.studio.blocks_dynamics import Envelope, knot_frames
from musicstudio.engines.studio.compose import Arrangement
from musicstudio.engines.studio.encode import (
    Block,
    EncodedAudio,
    Output,
    OutputFormat,
    encode_outputs,
    stem_format,
)
from musicstudio.engines.studio.master import (
    CEILING_DBFS,
    FOCUS_EDGE_BELOW_DB,
    LOSSY_CEILING_DBFS,
    MasterReport,
    fade_seconds,
    master_mix,
)
from musicstudio.engines.studio.midi import write_midi
from musicstudio.engines.studio.mix import (
    HighPass,
    LevelMeter,
    LevelRide,
    needs_highpass,
    part_gain_db,
)
from musicstudio.engines.studio.plan import Part
from musicstudio.engines.studio.stems import (
    ROOM_STEM,
    SpillFile,
    Stem,
    stem_blocks,
    stem_envelope,
    stem_keys,
)

# Render one part: (part, total frames, block frames) -> its blocks, in order (the
# renderer may reuse one buffer for all of them).
PartSource = Callable[[Part, int, int], Iterator[PCM]]

# Progress bands (0-99 overall is the engine's; these are fractions of the pipeline).
_RENDER = (0.0, 0.6)
_MIX = (0.6, 0.65)
_MASTER = (0.65, 0.8)
_ENCODE = (0.8, 1.0)


class SourceFailed(Exception):
    """The renderer rejected its bank mid-render (the engine then tries the next bank)."""


class StageTimer:
    """Wall time per stage, for the benchmark (a render never needs one)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block and add it to ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass
class PipelineResult:
    """The master and MIDI written into the work directory, the facts, and the stems to come."""

    master: EncodedAudio
    midi_path: Path
    report: MasterReport
    stems: PendingStems
    ceiling_dbfs: float = CEILING_DBFS


class PendingStems:
    """The parked parts and their finished gain envelopes, ready to become stem files.

    Encoding the stems costs more than everything else in a render (one lossless file per
    part), so the pipeline hands them over unencoded: ``encode()`` writes them (the worker
    calls it once the master is published), ``discard()`` drops the parked parts. Exactly
    one of the two is meant to run; both are safe to call again (they then do nothing).
    """

    def __init__(
        self,
        stems: list[Stem],
        files: _Files,
        *,
        envelope: Envelope,
        threshold: float,
        work_dir: Path,
        name: str,
        fmt: OutputFormat,
        block: int,
        duration_seconds: float,
        timer: StageTimer,
    ) -> None:
        self._stems = stems
        self._files = files
        self._envelope = envelope
        self._threshold = threshold
        self._dir = work_dir
        self._name = name
        self.fmt = stem_format(fmt.key)
        self._block = block
        self._duration = duration_seconds
        self._timer = timer
        self._done = False

    @property
    def names(self) -> list[str]:
        """The stem names, in part order (the room return last)."""
        return [stem.key for stem in self._stems]

    def path(self, key: str) -> Path:
        """Where the stem ``key`` is (or will be) written."""
        return self._dir / f"{self._name}.{key}.{self.fmt.extension}"

    def recipe(self) -> list[dict[str, Any]]:
        """The recipe entry of every stem (known before encoding)."""
        return [_stem_recipe(stem, self.fmt, self.path(stem.key)) for stem in self._stems]

    def encode(self) -> dict[str, EncodedAudio]:
        """Write every stem file (16-bit, the master's gain envelope applied); name -> file."""
        if self._done:
            return {}
        self._done = True
        outputs = []
        try:
            with self._timer.stage("encode_stems"):
                for stem in self._stems:
                    if stem.highpassed:
                        self._highpass(stem)
                    stem.envelope, stem.safety_db = stem_envelope(
                        stem, self._envelope, self._threshold, SAMPLE_RATE
                    )

                    def blocks(
                        stem: Stem = stem, envelope: Envelope = stem.envelope
                    ) -> Iterator[Block]:
                        return stem_blocks(stem, envelope, self._block)

                    outputs.append(Output(self.path(stem.key), self.fmt, blocks))
                self._files.outputs.extend(o.path for o in outputs)
                encoded = encode_outputs(outputs, SAMPLE_RATE, self._duration, lambda f: None)
        except BaseException:
            for output in outputs:
                with contextlib.suppress(OSError):
                    output.path.unlink()
            raise
        finally:
            self._files.remove_spills()
        return {stem.key: enc for stem, enc in zip(self._stems, encoded, strict=True)}

    def _highpass(self, stem: Stem) -> None:
        """Re-park the part through the bus high-pass, measuring its peaks as it goes."""
        filtered = SpillFile(self._dir, f"{self._name}-{stem.key}-hp", stem.spill.r)
        self._files.spills.append(filtered)
        highpass = HighPass(SAMPLE_RATE)
        for raw in stem.spill.blocks(self._block):
            filtered.write(highpass.process(raw))
        filtered.finish()
        stem.spill.remove()
        stem.spill = filtered

    def discard(self) -> None:
        """Drop the parked parts without writing stems."""
        self._done = True
        self._files.remove_spills()


def _band(checkpoint: Checkpoint, band: tuple[float, float]) -> Checkpoint:
    lo, hi = band
    return lambda fraction: checkpoint(lo + (hi - lo) * max(0.0, min(1.0, fraction)))


def _lowest_key(arrangement: Arrangement, part: Part) -> int | None:
    keys = [e.key for e in arrangement.events_on(part.channel)]
    return min(keys) if keys else None


class _Files:
    """Everything this render created, so a failure or a cancel can remove it all."""

    def __init__(self) -> None:
        self.spills: list[SpillFile] = []
        self.outputs: list[Path] = []

    def remove_spills(self) -> None:
        for spill in self.spills:
            spill.remove()

    def remove_all(self) -> None:
        self.remove_spills()
        for path in self.outputs:
            with contextlib.suppress(OSError):
                path.unlink()


def _render_parts(
    arrangement: Arrangement,
    source: PartSource,
    files: _Files,
    work_dir: Path,
    name: str,
    frames: int,
    block: int,
    checkpoint: Checkpoint,
    timer: StageTimer,
) -> list[Stem]:
    parts = arrangement.plan.parts
    levels: Mapping[str, float] = dict(getattr(arrangement.plan.genre, "mix_levels", ()))
    r = knot_frames(SAMPLE_RATE)
    synth_seconds = 0.0
    stems: list[Stem] = []
    count = max(1, len(parts))
    for index, (part, key) in enumerate(zip(parts, stem_keys(parts), strict=True)):
        # Parts reaching into the sub-bass are high-passed together in the mix, and one by
        # one when their stems are written; peaks are measured then (off the job's path).
        low = needs_highpass(part, _lowest_key(arrangement, part))
        spill = SpillFile(work_dir, f"{name}-{key}", r, track_peaks=False)
        files.spills.append(spill)
        meter = LevelMeter(SAMPLE_RATE)
        ride = LevelRide(arrangement.level_lane(part.channel), SAMPLE_RATE)
        done = 0
        try:
            blocks = source(part, frames, block)
            while done < frames:
                # The synthesiser's own time, apart from what is done with its output.
                started = time.perf_counter()
                pcm = next(blocks)
                synth_seconds += time.perf_counter() - started
                ride.apply(pcm, done)  # the renderer's buffer: ours until the next block
                spill.write(pcm)
                meter.add(pcm)
                done += pcm.shape[0]
                checkpoint((index + done / frames) / count)
        except RuntimeError as exc:  # tinysoundfont rejecting a bank it parsed
            raise SourceFailed(str(exc)) from exc
        spill.finish()
        level = meter.level_db()
        stems.append(
            Stem(
                key=key,
                spill=spill,
                part=part,
                gain_db=part_gain_db(part, level, levels),
                level_db=level,
                highpassed=low,
            )
        )
    timer.seconds["synthesis"] = timer.seconds.get("synthesis", 0.0) + synth_seconds
    return stems


def _mix(stems: list[Stem], frames: int, block: int, checkpoint: Checkpoint) -> PCM:
    """Sum the parts, each times its gain; the low ones through one shared high-pass."""
    mix = np.zeros((frames, 2), dtype=np.float32)
    audible = [s for s in stems if s.gain > 0]
    low = [s for s in audible if s.highpassed]
    high = [s for s in audible if not s.highpassed]
    # The low sub-bus: high-passing the sum equals high-passing each part (it is linear),
    # at the cost of one filter instead of one per part.
    bus = np.zeros((block, 2), dtype=np.float32)
    highpass = HighPass(SAMPLE_RATE)
    readers = [(s, s.spill.blocks(block)) for s in (*low, *high)]
    for start, end in spans(frames, block):
        n = end - start
        out = mix[start:end]
        sub = bus[:n]
        sub.fill(0.0)
        for stem, reader in readers:
            raw = next(reader)
            np.multiply(raw, np.float32(stem.gain), out=raw)  # the read buffer is ours
            if stem.highpassed:
                sub += raw
            else:
                out += raw
        if low:
            out += highpass.process(sub)
        checkpoint(end / frames)
    return mix


def _stem_recipe(stem: Stem, fmt: OutputFormat, path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": stem.key,
        "role": stem.part.role if stem.part else ROOM_STEM,
        "file": path.name,
        "format": fmt.key,
        "mix_gain_db": None if stem.gain_db is None else round(stem.gain_db, 2),
        "level_db": None if stem.level_db is None else round(stem.level_db, 2),
        "highpassed": stem.highpassed,
    }
    if stem.part is not None:
        entry.update(program=stem.part.program, instrument=stem.part.name)
    return entry


def run_pipeline(
    arrangement: Arrangement,
    source: PartSource,
    *,
    work_dir: Path,
    name: str,
    fmt: OutputFormat,
    duration_seconds: float,
    checkpoint: Checkpoint,
    timer: StageTimer | None = None,
) -> PipelineResult:
    """Render, mix, master and encode ``arrangement`` into ``work_dir``.

    Files are named ``<name>.<ext>``, ``<name>.<stem>.<ext>`` and ``<name>.mid``. On any
    failure (including a cancel raised by ``checkpoint``) every file made here is removed.
    """
    timer = timer or StageTimer()
    frames = round(duration_seconds * SAMPLE_RATE)
    block = block_frames(frames, SAMPLE_RATE)
    ceiling = LOSSY_CEILING_DBFS if fmt.lossy else CEILING_DBFS
    files = _Files()
    try:
        with timer.stage("render"):
            stems = _render_parts(
                arrangement,
                source,
                files,
                work_dir,
                name,
                frames,
                block,
                _band(checkpoint, _RENDER),
                timer,
            )
        with timer.stage("mix"):
            mix = _mix(stems, frames, block, _band(checkpoint, _MIX))
        wet = float(getattr(arrangement.plan.genre, "room", 0.2))
        room: SpillFile | None = None
        if wet > 0:
            room = SpillFile(work_dir, f"{name}-{ROOM_STEM}", knot_frames(SAMPLE_RATE))
            files.spills.append(room)
        ending = str(getattr(arrangement.plan, "ending", "cadence"))
        focus = bool(getattr(arrangement.plan, "focus", False))
        fade_in_s, fade_out_s = fade_seconds(duration_seconds, ending, focus=focus)
        with timer.stage("master"):
            mastered = master_mix(
                mix,
                SAMPLE_RATE,
                room=wet,
                fade_in_s=fade_in_s,
                fade_out_s=fade_out_s,
                checkpoint=_band(checkpoint, _MASTER),
                room_sink=room.write if room is not None else None,
                ceiling_dbfs=ceiling,
                edge_below_db=FOCUS_EDGE_BELOW_DB if focus else None,
            )
        if room is not None:
            room.finish()
            stems.append(Stem(key=ROOM_STEM, spill=room, gain_db=0.0))

        def master_blocks() -> Iterator[Block]:
            for start, end in spans(frames, block):
                yield mix[start:end]

        master_path = work_dir / f"{name}.{fmt.extension}"
        files.outputs.append(master_path)
        with timer.stage("encode_master"):
            (master,) = encode_outputs(
                [Output(master_path, fmt, master_blocks)],
                SAMPLE_RATE,
                duration_seconds,
                _band(checkpoint, _ENCODE),
            )
        midi_path = work_dir / f"{name}.mid"
        files.outputs.append(midi_path)
        with timer.stage("midi"):
            write_midi(arrangement, midi_path)
    except BaseException:
        files.remove_all()
        raise
    pending = PendingStems(
        stems,
        files,
        envelope=mastered.envelope,
        threshold=10 ** (ceiling / 20) * 0.995,
        work_dir=work_dir,
        name=name,
        fmt=fmt,
        block=block,
        duration_seconds=duration_seconds,
        timer=timer,
    )
    return PipelineResult(
        master=master,
        midi_path=midi_path,
        report=mastered.report,
        stems=pending,
        ceiling_dbfs=ceiling,
    )
