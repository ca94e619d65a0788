"""The built-in ``studio`` engine: a seeded arrangement rendered with a General MIDI bank.

Pipeline: prompt -> ``plan`` -> ``compose`` (note events) -> ``pipeline``: each part
rendered with tinysoundfont (``render``) or the numpy fallback (``synth``) -> ``mix`` ->
``master`` -> ``encode`` the master and one stem per part, plus the composition as MIDI
(``midi``). It runs on one CPU core much faster than real time, streams everything but
the mix block by block, and needs no model weights.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from musicstudio.config import Settings
from musicstudio.engines.base import (
    CancelledFn,
    DeferredStems,
    EngineCapabilities,
    ProgressFn,
    RenderCancelled,
    RenderError,
    RenderRequest,
    RenderResult,
)
from musicstudio.engines.studio.audio import PCM, Checkpoint
from musicstudio.engines.studio.compose import Arrangement
from musicstudio.engines.studio.compose import compose as compose_plan
from musicstudio.engines.studio.encode import FORMATS, EncodeError, mp3_encoder
from musicstudio.engines.studio.focus import plan_focus_segment
from musicstudio.engines.studio.master import SilentAudio
from musicstudio.engines.studio.midi import midi_note_counts
from musicstudio.engines.studio.pipeline import (
    PartSource,
    PipelineResult,
    SourceFailed,
    StageTimer,
    run_pipeline,
)
from musicstudio.engines.studio.plan import Part, Plan, derive_seed, make_plan
from musicstudio.engines.studio.render import render_part_blocks
from musicstudio.engines.studio.sf2_layout import layout_for
from musicstudio.engines.studio.soundfont import (
    SYSTEM_BANKS,
    Bank,
    TsfFont,
    candidate_banks,
    open_font,
    output_mode_stereo,
    resolve_bank,
)
from musicstudio.engines.studio.synth import synth_part_blocks

__all__ = ["ENGINE_VERSION", "StudioEngine"]

log = logging.getLogger(__name__)

ENGINE_KEY = "studio"
ENGINE_VERSION = "2.1.1"
MAX_DURATION_SECONDS = 600

# Progress: planning and composing, then the pipeline (the service reports 100 itself
# once the result is stored).
_PLAN_DONE = 3
_PIPELINE_DONE = 99


class _Progress:
    """Maps stage fractions to monotonic 0-99 ints and checks for cancellation."""

    def __init__(self, progress: ProgressFn, cancelled: CancelledFn) -> None:
        self._progress = progress
        self._cancelled = cancelled
        self._last = -1

    def report(self, value: int, *, final: bool = False) -> None:
        # Once the files are written, a late cancel no longer stops anything.
        if not final:
            self.check()
        value = max(0, min(_PIPELINE_DONE, value))
        if value > self._last:
            self._last = value
            self._progress(value)

    def check(self) -> None:
        if self._cancelled():
            raise RenderCancelled()

    def stage(self, start: int, end: int) -> Checkpoint:
        def checkpoint(fraction: float) -> None:
            self.report(start + int((end - start) * max(0.0, min(1.0, fraction))))

        return checkpoint


def _safe_stem(job_id: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", job_id)[:64]
    return stem or "track"


class StudioEngine:
    """General MIDI arranger/renderer; ``StudioEngine(settings)`` is the plug-in factory."""

    key = ENGINE_KEY

    def __init__(
        self,
        settings: Settings,
        *,
        system_banks: Sequence[Path] = SYSTEM_BANKS,
        use_bundled_bank: bool = True,
    ) -> None:
        self._settings = settings
        self._system_banks = tuple(system_banks)
        self._use_bundled = use_bundled_bank

    # -- capabilities --------------------------------------------------------------

    def bank(self) -> Bank:
        """The bank a render would use right now (file checks only)."""
        return resolve_bank(
            self._settings.soundfont,
            system_banks=self._system_banks,
            use_bundled=self._use_bundled,
        )

    def capabilities(self) -> EngineCapabilities:
        """Static facts plus the licence of the bank that would render (no bank loading)."""
        bank = self.bank()
        return EngineCapabilities(
            engine_key=ENGINE_KEY,
            name="Studio (General MIDI)",
            description=(
                "Composes an instrumental arrangement (drums, bass, chords, melody) from the "
                "prompt and renders it with a General MIDI SoundFont on the CPU, with a "
                "stem per part and the composition as MIDI."
            ),
            modes=("creation", "focus"),
            max_duration_seconds=MAX_DURATION_SECONDS,
            supports_vocals=False,
            supports_lyrics=False,
            supports_stems=True,
            supported_languages=(),
            output_formats=tuple(FORMATS),
            licence=bank.licence,
        )

    # -- render --------------------------------------------------------------------

    def plan(self, request: RenderRequest) -> Plan:
        """The musical plan for a request (deterministic for the same request and seed)."""
        if request.focus is not None:
            segment = request.focus
            return plan_focus_segment(
                segment.session_seed,
                segment.index,
                goal_prompt=request.prompt,
                duration_seconds=request.duration_seconds,
                intensity=segment.intensity,
                divergence=segment.divergence,
                style_tags=request.style_tags,
            )
        seed = request.seed if request.seed is not None else derive_seed(request.job_id)
        return make_plan(
            request.prompt,
            seed=seed,
            duration_seconds=request.duration_seconds,
            style_tags=request.style_tags,
            focus=request.mode == "focus",
            title=request.title,
            continuation=request.continuation,
        )

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        """Plan, compose, render, master and encode one track (and its stems and MIDI)."""
        return self.render_timed(request, progress, cancelled, None)

    def render_plan(
        self, request: RenderRequest, plan: Plan, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        """Render a plan made elsewhere, e.g. a focus-session segment from
        ``focus.plan_focus_segment``; ``request`` gives the job id, work dir and format."""
        if round(plan.duration_seconds) != request.duration_seconds:
            raise RenderError("The plan and the request disagree on the duration.")
        return self.render_timed(request, progress, cancelled, None, plan=plan)

    def render_timed(
        self,
        request: RenderRequest,
        progress: ProgressFn,
        cancelled: CancelledFn,
        timer: StageTimer | None,
        *,
        plan: Plan | None = None,
    ) -> RenderResult:
        """``render``, recording each stage's wall time in ``timer`` (for the benchmark)."""
        self._validate(request)
        timer = timer or StageTimer()
        tracker = _Progress(progress, cancelled)
        tracker.report(0)
        with timer.stage("compose"):
            plan = plan or self.plan(request)
            arrangement = compose_plan(plan)
        tracker.report(_PLAN_DONE)

        fmt = FORMATS[request.output_format]
        checkpoint = tracker.stage(_PLAN_DONE, _PIPELINE_DONE)
        for bank, source in self._sources(arrangement):
            try:
                done = run_pipeline(
                    arrangement,
                    source,
                    work_dir=Path(request.work_dir),
                    name=f"studio-{_safe_stem(request.job_id)}",
                    fmt=fmt,
                    duration_seconds=float(request.duration_seconds),
                    checkpoint=checkpoint,
                    timer=timer,
                )
            except SourceFailed:
                log.warning("SoundFont %s failed while rendering; trying the next bank", bank.name)
                continue
            except SilentAudio as exc:
                raise RenderError(
                    "The arrangement rendered as silence; try another prompt or seed."
                ) from exc
            except EncodeError as exc:
                raise RenderError(f"Could not encode the track as {fmt.key.upper()}.") from exc
            except OSError as exc:
                raise RenderError("Could not write the rendered track.") from exc
            tracker.report(_PIPELINE_DONE, final=True)
            return self._result(request, plan, arrangement, bank, done)
        raise RenderError("No sound source could render the track.")  # the synth never fails

    def _result(
        self,
        request: RenderRequest,
        plan: Plan,
        arrangement: Arrangement,
        bank: Bank,
        done: PipelineResult,
    ) -> RenderResult:
        fmt = FORMATS[request.output_format]
        report = done.report
        recipe = self._recipe(plan, arrangement, bank, report.integrated_lufs, report.peak_dbfs)
        recipe.update(
            output_format=fmt.key,
            sample_rate=done.master.sample_rate,
            master_gain_db=report.gain_db,
            peak_ceiling_dbfs=done.ceiling_dbfs,
            mastering={
                "chain": ["highpass", "room", "fades", "compressor", "limiter", "loudness"],
                "max_compression_db": report.max_compression_db,
                "max_limiting_db": report.max_limiting_db,
                "rounds": report.rounds,
            },
            encoder=mp3_encoder() if fmt.key == "mp3" else "libsndfile",
            stems=done.stems.recipe(),
            stems_format=done.stems.fmt.key,
            # Stems carry their mix gain and the master's whole gain envelope (gain,
            # fades, compression, limiting): summed, they give the master back.
            stems_sum="master",
            midi={"file": done.midi_path.name, "note_counts": midi_note_counts(arrangement)},
            style_tags=list(request.style_tags),
        )
        if request.lyrics:
            # Instrumental only: say so rather than silently dropping the user's lyrics.
            recipe["lyrics_ignored"] = True
        return RenderResult(
            audio_path=done.master.path,
            mime_type=done.master.mime_type,
            measured_duration_seconds=round(done.master.duration_seconds, 3),
            title=plan.title,
            licence=bank.licence,
            recipe=recipe,
            midi_path=done.midi_path,
            deferred_stems=DeferredStems(
                names=tuple(done.stems.names),
                make=lambda: {key: enc.path for key, enc in done.stems.encode().items()},
                discard=done.stems.discard,
            ),
        )

    def _validate(self, request: RenderRequest) -> None:
        if not 1 <= request.duration_seconds <= MAX_DURATION_SECONDS:
            raise RenderError(
                f"Duration must be between 1 and {MAX_DURATION_SECONDS} seconds for this engine."
            )
        if request.output_format not in FORMATS:
            supported = ", ".join(FORMATS)
            raise RenderError(f"Output format must be one of: {supported}.")
        try:
            Path(request.work_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RenderError("The work directory is not writable.") from exc

    def _sources(self, arrangement: Arrangement) -> Iterator[tuple[Bank, PartSource]]:
        """Each usable bank in preference order with its part renderer; the synth last."""
        banks = candidate_banks(
            self._settings.soundfont,
            system_banks=self._system_banks,
            use_bundled=self._use_bundled,
        )
        for bank in banks:
            if bank.is_synth:
                yield bank, _synth_source(arrangement)
                return
            if open_font(bank) is None:  # parses and caches the bank, or records failure
                continue
            yield bank, _font_source(arrangement, bank)

    @staticmethod
    def _recipe(
        plan: Plan, arrangement: Arrangement, bank: Bank, lufs: float, peak: float
    ) -> dict[str, Any]:
        return {
            "engine": ENGINE_KEY,
            "engine_version": ENGINE_VERSION,
            "renderer": "numpy-synth" if bank.is_synth else "tinysoundfont",
            "soundfont": bank.name,
            "soundfont_source": bank.source,
            "soundfont_licence": bank.licence.licence_version,
            **plan.as_dict(),
            "duration_seconds": plan.duration_seconds,
            "note_counts": arrangement.note_counts(),
            "integrated_lufs": lufs,
            "peak_dbfs": peak,
        }


def _font_source(arrangement: Arrangement, bank: Bank) -> PartSource:
    mode = output_mode_stereo()

    layout = layout_for(bank.path) if bank.path is not None else None

    def clone() -> TsfFont:
        # Each part gets its own clones; the parsed bank is shared and cached.
        font = open_font(bank)
        if font is None:  # only if the cache were cleared mid-render
            raise SourceFailed("the SoundFont could not be loaded")
        return font

    def blocks(part: Part, frames: int, block: int) -> Iterator[PCM]:
        return render_part_blocks(
            arrangement,
            part,
            clone(),
            mode,
            frames,
            block,
            layout=layout,
            clone=clone,
            bank_id=str(bank.path),
        )

    return blocks


def _synth_source(arrangement: Arrangement) -> PartSource:
    def blocks(part: Part, frames: int, block: int) -> Iterator[PCM]:
        return synth_part_blocks(arrangement, part, frames, block)

    return blocks
