"""Benchmark the ``studio`` engine: real-time factor per stage and peak memory, one core.

Each case (bank x prompt x duration x format) runs in a fresh Python process: it loads
the bank, does a 2 s warm-up render (so imports and first-call costs are not counted),
then times one full render through ``StudioEngine.render_timed`` and reports

* the real-time factor (track seconds / wall seconds) end to end -- request to a
  master and MIDI ready to publish, what a job waits for -- then with the stems the
  worker writes after publishing, and per stage: compose (plan + notes), synthesis
  (tinysoundfont and the note cache), render (synthesis plus each part's high-pass,
  level meter and parking), mix, master, encode of the master, encode of the stems;
* the process's peak resident memory (``VmHWM``), which includes the warm-up.

Banks: TimGM6mb (inside pretty_midi, the pip-only default) always; FluidR3_GM when
``/usr/share/sounds/sf2/FluidR3_GM.sf2`` exists (the output says when it does not).
The MP3 encoder is ``lameenc`` when installed, else libsndfile's: the table says which.
Results: a Markdown table on stdout and JSON in ``bench/results/engine-<UTC time>.json``.

    .venv/bin/python bench/engine.py                  # 30, 60, 300 s; four prompts
    .venv/bin/python bench/engine.py --quick          # smoke run: one prompt, 10 and 30 s
    .venv/bin/python bench/engine.py --durations 60 --rounds 3 --formats mp3 flac
    .venv/bin/python bench/engine.py --durations 60 --all-genres --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PROMPTS = ("lo-fi hip hop for studying", "energetic rock anthem")
# One prompt per genre the engine knows (``--all-genres``), for the 60 s table.
GENRE_PROMPTS = (
    "lo-fi hip hop for studying",
    "boom bap hip hop beat",
    "calm ambient soundscape",
    "deep house groove",
    "dark techno",
    "drum and bass",
    "synthwave night drive",
    "happy pop song",
    "energetic rock anthem",
    "smooth jazz",
    "slow blues",
    "solo piano",
    "epic cinematic orchestral",
    "acoustic folk",
    "funk groove",
)
CASE_TIMEOUT_S = 900


# --------------------------------------------------------------------------- one case


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then time one render; runs inside the per-case subprocess."""
    from musicstudio.config import load_settings
    from musicstudio.engines.base import RenderRequest, finish_stems
    from musicstudio.engines.studio import StudioEngine
    from musicstudio.engines.studio.encode import mp3_encoder
    from musicstudio.engines.studio.pipeline import StageTimer

    bank = case["bank"]
    system_banks = (FLUIDR3,) if bank == "FluidR3_GM" else ()
    engine = StudioEngine(load_settings(), system_banks=system_banks)
    work = Path(case["work_dir"])

    def render(name: str, seconds: int, timer: StageTimer | None) -> Any:
        request = RenderRequest(
            job_id=name,
            prompt=case["prompt"],
            duration_seconds=seconds,
            work_dir=work / name,
            seed=1,
            output_format=case["format"],
        )
        return engine.render_timed(request, lambda p: None, lambda: False, timer)

    finish_stems(render("warmup", 2, None))
    timer = StageTimer()
    started = time.perf_counter()
    result = render("timed", case["duration"], timer)
    total = time.perf_counter() - started  # the master (and MIDI) ready to publish
    finish_stems(result)  # what the worker does after publishing
    with_stems = time.perf_counter() - started
    return {
        **case,
        "total_s": total,
        "with_stems_s": with_stems,
        "stages_s": timer.seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "soundfont": result.recipe["soundfont"],
        "encoder": mp3_encoder() if case["format"] == "mp3" else "libsndfile",
        "stems": len(result.stems),
        "integrated_lufs": result.recipe["integrated_lufs"],
    }


def spawn_case(case: dict[str, Any]) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return its measurements."""
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        env = {**os.environ, "MUSICSTUDIO_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("MUSICSTUDIO_SOUNDFONT", None)
        payload = json.dumps({**case, "work_dir": str(Path(tmp) / "work")})
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--case", payload],
            env=env,
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- report


def _rtf(duration: float, seconds: float | None) -> str:
    if not seconds:
        return "-"
    return f"{duration / seconds:,.0f}x"


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (median run of each case)."""
    head = (
        "| bank | prompt | fmt | track s | master ready s | **end to end** | with stems "
        "| compose | synthesis | render | mix | master | enc. master | enc. stems | stems "
        "| peak RSS MB |"
    )
    rule = "|" + "---|" * 16
    rows = [head, rule]
    for r in results:
        d = float(r["duration"])
        st = r["stages_s"]
        rows.append(
            f"| {r['soundfont']} | {r['prompt']} | {r['format']} | {r['duration']} "
            f"| {r['total_s']:.2f} | **{_rtf(d, r['total_s'])}** "
            f"| {_rtf(d, r['with_stems_s'])} | "
            + " | ".join(
                _rtf(d, st.get(k)) for k in ("compose", "synthesis", "render", "mix", "master")
            )
            + f" | {_rtf(d, st.get('encode_master'))} | {_rtf(d, st.get('encode_stems'))} "
            f"| {r['stems']} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(rows)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What ran the benchmark."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), cpu)
    except OSError:
        pass
    import soundfile

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libsndfile": soundfile.__libsndfile_version__,
        "packages": {
            name: _version(name)
            for name in ("numpy", "scipy", "soundfile", "tinysoundfont", "lameenc", "pretty_midi")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="one prompt, 10 and 30 s")
    parser.add_argument("--durations", type=int, nargs="+", default=[30, 60, 300])
    parser.add_argument("--prompts", nargs="+", default=list(PROMPTS))
    parser.add_argument(
        "--all-genres", action="store_true", help="one prompt per genre (with --durations)"
    )
    parser.add_argument("--formats", nargs="+", default=["mp3"])
    parser.add_argument("--rounds", type=int, default=1, help="fresh processes per case")
    args = parser.parse_args(argv)

    if args.case:  # inside a per-case subprocess
        print(json.dumps(run_case(json.loads(args.case))))
        return 0

    durations, prompts = args.durations, args.prompts
    if args.all_genres:
        prompts = list(GENRE_PROMPTS)
    if args.quick:
        durations, prompts = [10, 30], prompts[:1]
    banks = ["TimGM6mb"]
    if FLUIDR3.is_file():
        banks.append("FluidR3_GM")
    else:
        print(f"FluidR3_GM not measured: {FLUIDR3} does not exist on this machine.\n")

    results: list[dict[str, Any]] = []
    for bank in banks:
        for prompt in prompts:
            for fmt in args.formats:
                for duration in durations:
                    case = {"bank": bank, "prompt": prompt, "format": fmt, "duration": duration}
                    runs = [spawn_case(case) for _ in range(max(1, args.rounds))]
                    runs.sort(key=lambda r: float(r["total_s"]))
                    median = runs[(len(runs) - 1) // 2]
                    median["rounds_total_s"] = [r["total_s"] for r in runs]
                    results.append(median)
                    print(
                        f"  {bank} / {prompt} / {fmt} / {duration} s: "
                        f"{duration / median['total_s']:.0f}x, {median['peak_rss_mb']:.0f} MB",
                        file=sys.stderr,
                    )

    table = markdown(results)
    print(table)
    encoders = sorted({r["encoder"] for r in results})
    print(f"\nMP3 encoder: {', '.join(encoders)}")
    info = machine()
    print(f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}")

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"engine-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "machine": info,
                "fluidr3_present": FLUIDR3.is_file(),
                "median_of_rounds": max(1, args.rounds),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nJSON: {out.relative_to(BENCH_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
