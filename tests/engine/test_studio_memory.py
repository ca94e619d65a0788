"""Peak memory of a long render, measured in a fresh process (a limit, not a timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LIMIT_MB = 400

# FLAC rather than MP3 keeps the test quick when lameenc is not installed (libsndfile's
# MP3 encoder takes ~12 s for 5 minutes); the encoders stream in blocks either way.
_LONG_RENDER = """
import json, sys
from pathlib import Path
import soundfile as sf
from musicstudio.config import load_settings
from musicstudio.engines.base import RenderRequest, finish_stems
from musicstudio.engines.studio import StudioEngine

engine = StudioEngine(load_settings(), system_banks=())
request = RenderRequest(
    job_id="long", prompt="lo-fi hip hop for studying", duration_seconds=300,
    work_dir=Path(sys.argv[1]), seed=1, output_format="flac",
)
result = engine.render(request, lambda p: None, lambda: False)
finish_stems(result)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({
    "peak_kib": int(status["VmHWM"].split()[0]),
    "duration": sf.info(str(result.audio_path)).duration,
    "stems": {k: sf.info(str(p)).duration for k, p in result.stems.items()},
    "files": sorted(p.name for p in Path(sys.argv[1]).iterdir()),
}))
"""


def test_five_minute_render_stays_under_400_mb(tmp_path: Path) -> None:
    work = tmp_path / "work"
    env = {**os.environ, "MUSICSTUDIO_DATA_DIR": str(tmp_path / "data")}
    env.pop("MUSICSTUDIO_SOUNDFONT", None)
    done = subprocess.run(
        [sys.executable, "-c", _LONG_RENDER, str(work)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["peak_kib"] / 1024 <= LIMIT_MB, report
    assert abs(report["duration"] - 300) <= 0.05
    assert report["stems"] and all(abs(d - 300) <= 0.05 for d in report["stems"].values())
    # The parts were parked on disk while mastering; the spill files are gone.
    assert not [name for name in report["files"] if name.endswith(".spill")]
