"""Engine discovery: entry points load, a broken plug-in is skipped, not fatal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from musicstudio.engines.registry import discover_engines
from tests.conftest import make_settings


def test_a_broken_plugin_is_skipped_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dist = tmp_path / "brokenplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[musicstudio.engines]\nbroken = brokenplug_missing_module:Engine\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR, logger="musicstudio.engines.registry"):
        registry = discover_engines(make_settings(tmp_path / "data"))
    assert registry.keys() == ["studio"]
    assert "'broken' failed to load" in caplog.text
