"""Fixtures for the studio engine tests: settings built directly, renders cached per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from musicstudio.config import Settings
from musicstudio.engines.base import RenderRequest
from musicstudio.engines.studio import StudioEngine
from tests.engine.studio_helpers import Rendered, RenderFn, build_settings, run_render


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Factory: ``make_settings(soundfont=...)`` with a per-test data dir."""

    def factory(soundfont: str | None = None) -> Settings:
        return build_settings(tmp_path, soundfont)

    return factory


@pytest.fixture(scope="session")
def bundled_engine(tmp_path_factory: pytest.TempPathFactory) -> StudioEngine:
    """The engine pinned to the TimGM6mb bank (ignores a host FluidR3 so results are stable)."""
    settings = build_settings(tmp_path_factory.mktemp("engine-data"))
    return StudioEngine(settings, system_banks=())


@pytest.fixture(scope="session")
def render(bundled_engine: StudioEngine, tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    """``render(prompt, duration, seed=..., **request_fields)``, cached for the session."""
    cache: dict[tuple[object, ...], Rendered] = {}
    counter = iter(range(10**6))

    def do_render(prompt: str, duration: int, seed: int | None = 1, **fields: object) -> Rendered:
        key = (prompt, duration, seed, tuple(sorted(fields.items())))
        if key not in cache:
            n = next(counter)
            request = RenderRequest(
                job_id=str(fields.pop("job_id", f"job-{n}")),
                prompt=prompt,
                duration_seconds=duration,
                work_dir=tmp_path_factory.mktemp(f"render-{n}"),
                seed=seed,
                **fields,  # type: ignore[arg-type]
            )
            cache[key] = run_render(bundled_engine, request)
        return cache[key]

    return do_render
