"""The built-in ``studio`` engine: a seeded arrangement rendered with a General MIDI bank.

Pipeline (one module each): prompt -> ``plan`` -> ``compose`` (note events) -> ``render``
(tinysoundfont) or ``synth`` (numpy fallback) -> ``master`` -> ``encode``. It runs on a
CPU in a fraction of real time and needs no model weights.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from musicstudio.config import Settings
from musicstudio.engines.base import (
    CancelledFn,
    EngineCapabilities,
    ProgressFn,
    RenderCancelled,
    RenderError,
    RenderRequest,
    RenderResult,
)
from musicstudio.engines.studio.audio import PCM, SAMPLE_RATE, Checkpoint
from musicstudio.engines.studio.compose import Arrangement
from musicstudio.engines.studio.compose import compose as compose_plan
from musicstudio.engines.studio.encode import FORMATS, EncodeError
from musicstudio.engines.studio.encode import encode as encode_pcm
from musicstudio.engines.studio.master import CEILING_DBFS, LOSSY_CEILING_DBFS, SilentAudio
from musicstudio.engines.studio.master import master as master_pcm
from musicstudio.engines.studio.plan import Plan, derive_seed, make_plan
from musicstudio.engines.studio.render import render_soundfont
from musicstudio.engines.studio.soundfont import (
    SYSTEM_BANKS,
    Bank,
    TsfFont,
    candidate_banks,
    open_font,
    output_mode_stereo,
    resolve_bank,
)
from musicstudio.engines.studio.synth import render_synth

__all__ = ["ENGINE_VERSION", "StudioEngine"]

log = logging.getLogger(__name__)

ENGINE_KEY = "studio"
ENGINE_VERSION = "1.0.0"
MAX_DURATION_SECONDS = 600

# Progress bands per stage (the service reports 100 itself once the result is stored).
_PLAN_DONE = 5
_RENDER_DONE = 75
_MASTER_DONE = 88
_ENCODE_DONE = 99


class _Progress:
    """Maps stage fractions to monotonic 0-99 ints and checks for cancellation."""

    def __init__(self, progress: ProgressFn, cancelled: CancelledFn) -> None:
        self._progress = progress
        self._cancelled = cancelled
        self._last = -1

    def report(self, value: int) -> None:
        self.check()
        value = max(0, min(_ENCODE_DONE, value))
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
                "prompt and renders it with a General MIDI SoundFont on the CPU."
            ),
            modes=("creation", "focus"),
            max_duration_seconds=MAX_DURATION_SECONDS,
            supports_vocals=False,
            supports_lyrics=False,
            supports_stems=False,
            supported_languages=(),
            output_formats=tuple(FORMATS),
            licence=bank.licence,
        )

    # -- render --------------------------------------------------------------------

    def plan(self, request: RenderRequest) -> Plan:
        """The musical plan for a request (deterministic for the same request and seed)."""
        seed = request.seed if request.seed is not None else derive_seed(request.job_id)
        return make_plan(
            request.prompt,
            seed=seed,
            duration_seconds=request.duration_seconds,
            style_tags=request.style_tags,
            focus=request.mode == "focus",
            title=request.title,
        )

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        """Plan, compose, render, master and encode one track into ``request.work_dir``."""
        self._validate(request)
        tracker = _Progress(progress, cancelled)
        tracker.report(0)

        plan = self.plan(request)
        arrangement = compose_plan(plan)
        tracker.report(_PLAN_DONE)

        total_frames = round(request.duration_seconds * SAMPLE_RATE)
        pcm, bank = self._render_pcm(
            arrangement, total_frames, tracker.stage(_PLAN_DONE, _RENDER_DONE)
        )

        fmt = FORMATS[request.output_format]
        ceiling = LOSSY_CEILING_DBFS if fmt.lossy else CEILING_DBFS
        try:
            mastered, report = master_pcm(
                pcm,
                SAMPLE_RATE,
                room=plan.genre.room,
                duration_seconds=request.duration_seconds,
                checkpoint=tracker.stage(_RENDER_DONE, _MASTER_DONE),
                ceiling_dbfs=ceiling,
            )
        except SilentAudio as exc:
            raise RenderError(
                "The arrangement rendered as silence; try another prompt or seed."
            ) from exc
        del pcm

        path = Path(request.work_dir) / f"studio-{_safe_stem(request.job_id)}.{fmt.extension}"
        try:
            encoded = encode_pcm(
                mastered,
                SAMPLE_RATE,
                path,
                fmt.key,
                float(request.duration_seconds),
                tracker.stage(_MASTER_DONE, _ENCODE_DONE),
            )
        except EncodeError as exc:
            raise RenderError(f"Could not encode the track as {fmt.key.upper()}.") from exc
        except OSError as exc:
            raise RenderError("Could not write the rendered track.") from exc

        recipe = self._recipe(plan, arrangement, bank, report.integrated_lufs, report.peak_dbfs)
        recipe["output_format"] = fmt.key
        recipe["sample_rate"] = encoded.sample_rate
        recipe["master_gain_db"] = report.gain_db
        recipe["peak_ceiling_dbfs"] = ceiling
        recipe["style_tags"] = list(request.style_tags)
        if request.lyrics:
            # Instrumental only: say so rather than silently dropping the user's lyrics.
            recipe["lyrics_ignored"] = True
        return RenderResult(
            audio_path=encoded.path,
            mime_type=encoded.mime_type,
            measured_duration_seconds=round(encoded.duration_seconds, 3),
            title=plan.title,
            licence=bank.licence,
            recipe=recipe,
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

    def _render_pcm(
        self, arrangement: Arrangement, total_frames: int, checkpoint: Checkpoint
    ) -> tuple[PCM, Bank]:
        banks = candidate_banks(
            self._settings.soundfont,
            system_banks=self._system_banks,
            use_bundled=self._use_bundled,
        )
        for bank in banks:
            if bank.is_synth:
                break
            if open_font(bank) is None:  # parses and caches the bank, or records failure
                continue

            def new_font(bank: Bank = bank) -> TsfFont:
                # Each part gets its own clone; the parsed bank is shared and cached.
                font = open_font(bank)
                if font is None:  # only if the cache were cleared mid-render
                    raise RenderError("The SoundFont could not be loaded.")
                return font

            mode = output_mode_stereo()
            try:
                pcm = render_soundfont(arrangement, new_font, mode, total_frames, checkpoint)
            except RuntimeError:  # tinysoundfont rejects a bank it parsed (e.g. no presets)
                log.warning("SoundFont %s failed while rendering; trying the next bank", bank.name)
                continue
            return pcm, bank
        synth_bank = banks[-1]
        return render_synth(arrangement, total_frames, checkpoint), synth_bank

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
