"""Engines are plug-ins found through entry points; a native crash in one fails that job only."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import httpx
import pytest

from musicstudio.queue import CRASH_MESSAGE
from tests.processes import answers, cli_env, free_port, start_cli, stop, wait_for, wait_for_job

pytestmark = pytest.mark.e2e

PLUGIN = '''
import os

from musicstudio.engines.base import EngineCapabilities, Licence


class CrashyEngine:
    """Dies the way a native extension does: SIGABRT, no Python exception."""

    key = "crashy"

    def __init__(self, settings):
        self.settings = settings

    def capabilities(self):
        return EngineCapabilities(
            engine_key="crashy", name="Crashy", description="crashes on purpose",
            modes=("creation",), max_duration_seconds=5, supports_vocals=False,
            supports_lyrics=False, supports_stems=False, supported_languages=(),
            output_formats=("mp3",), licence=Licence("unclear", "test", False, True),
        )

    def render(self, request, progress, cancelled):
        progress(10)
        os.abort()
'''


def _install_plugin(root: Path) -> Path:
    """A distribution on sys.path declaring a ``musicstudio.engines`` entry point."""
    root.mkdir()
    (root / "crashplug.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "crashplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crashplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[musicstudio.engines]\ncrashy = crashplug:CrashyEngine\n"
    )
    return root


def test_native_crash_fails_one_job_after_retries_not_the_service(tmp_path: Path) -> None:
    plugins = _install_plugin(tmp_path / "plugins")
    env = cli_env(tmp_path / "data", MUSICSTUDIO_LEASE_SECONDS="1", PYTHONPATH=str(plugins))
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_cli(["serve", "--port", str(port), "--workers", "1"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "MUSICSTUDIO_API_KEY=" in log.read_text(), 60, "the first-run key")
        text = log.read_text()
        org = re.search(r"MUSICSTUDIO_ORG=(org_\w+)", text)
        key = re.search(r"MUSICSTUDIO_API_KEY=(msk_\w{40})", text)
        assert org and key
        wait_for(lambda: answers(f"{base}/healthz"), 60, "the API")
        http = httpx.Client(
            base_url=f"{base}/v1/music/{org.group(1)}", headers={"X-API-Key": key.group(1)}
        )
        engines = [e["engine_key"] for e in http.get("/engines").json()["engines"]]
        assert engines == ["crashy", "studio"], "discovered through the entry-point group"

        job = http.post(
            "/generations", json={"engine": "crashy", "prompt": "boom", "duration_seconds": 2}
        ).json()
        done = wait_for_job(http, job["id"])
        assert done["status"] == "failed"
        assert done["error_message"] == CRASH_MESSAGE
        assert done["progress"] < 100

        # The service and the restarted worker go on with other work.
        ok = http.post(
            "/generations", json={"engine": "studio", "prompt": "calm piano", "duration_seconds": 2}
        ).json()
        after = wait_for_job(http, ok["id"])
        assert after["status"] == "succeeded"
        http.close()
    finally:
        stop(server)
    assert log.read_text().count("exited with -6") >= 3, "three attempts, three crashes"
