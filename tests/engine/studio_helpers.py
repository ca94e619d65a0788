"""Helpers shared by the studio engine tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from musicstudio.config import Settings
from musicstudio.engines.base import RenderRequest, RenderResult, finish_stems
from musicstudio.engines.studio import StudioEngine
from tests.conftest import make_settings


def build_settings(data_dir: Path, soundfont: str | None = None) -> Settings:
    """A complete Settings object for tests (no environment variables read)."""
    return make_settings(data_dir, soundfont=soundfont)


@dataclass
class Rendered:
    """A finished render plus its decoded audio and the progress values it reported."""

    result: RenderResult
    audio: npt.NDArray[np.float32]
    sample_rate: int
    progress: list[int]


RenderFn = Callable[..., Rendered]


def run_render(engine: StudioEngine, request: RenderRequest) -> Rendered:
    """Render with a recording progress callback and decode the file back."""
    progress: list[int] = []
    result = engine.render(request, progress.append, lambda: False)
    finish_stems(result)  # what a worker does once the master is published
    audio, rate = sf.read(str(result.audio_path), dtype="float32", always_2d=True)
    return Rendered(result, audio, rate, progress)
