"""The studio engine end to end: real renders, decoded and measured."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest
import soundfile as sf

from musicstudio.config import Settings
from musicstudio.engines.base import Engine, RenderCancelled, RenderError, RenderRequest
from musicstudio.engines.registry import discover_engines
from musicstudio.engines.studio import StudioEngine
from musicstudio.engines.studio import encode as encode_mod
from musicstudio.engines.studio import soundfont as bank_mod
from musicstudio.engines.studio.audio import SAMPLE_RATE
from musicstudio.engines.studio.plan import derive_seed
from tests.engine.studio_helpers import RenderFn, run_render

REFERENCE_ENGINE_FIELDS = {
    "engine_key",
    "name",
    "description",
    "modes",
    "max_duration_seconds",
    "supports_vocals",
    "supports_lyrics",
    "supports_stems",
    "supported_languages",
    "output_formats",
    "licence_class",
    "licence_version",
    "commercial_use",
    "requires_attribution",
    "enabled",
}


def _rms_dbfs(audio: npt.NDArray[np.float32]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))))


def _peak_dbfs(audio: npt.NDArray[np.float32]) -> float:
    return float(20 * np.log10(np.max(np.abs(audio))))


def _lufs(audio: npt.NDArray[np.float32], rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio))


# -- audio properties --------------------------------------------------------------


@pytest.mark.parametrize("duration", [1, 5, 12, 30])
def test_mp3_has_exact_duration_loudness_and_headroom(render: RenderFn, duration: int) -> None:
    out = render("lo-fi hip hop for studying", duration)
    result = out.result
    assert result.mime_type == "audio/mpeg"
    assert result.audio_path.suffix == ".mp3"
    assert result.audio_path.is_file()
    info = sf.info(str(result.audio_path))
    assert info.samplerate == SAMPLE_RATE
    assert info.channels == 2
    assert abs(info.duration - duration) <= 0.05
    assert abs(out.audio.shape[0] / out.sample_rate - duration) <= 0.05
    assert result.measured_duration_seconds == pytest.approx(duration, abs=0.05)
    assert _rms_dbfs(out.audio) > -35.0  # real music, not silence or a click
    assert abs(_lufs(out.audio, out.sample_rate) - (-14.0)) <= 1.0
    assert _peak_dbfs(out.audio) <= -0.5  # -1 dBFS mastered, plus a little MP3 overshoot
    assert abs(result.recipe["integrated_lufs"] - (-14.0)) <= 0.5
    assert result.recipe["peak_dbfs"] <= -1.0


def test_clip_fades_in_and_out(render: RenderFn) -> None:
    audio = render("energetic rock anthem", 5).audio
    head = np.abs(audio[:20]).max()
    tail = np.abs(audio[-200:]).max()
    body = np.abs(audio).max()
    assert head < 0.05 * body
    assert tail < 0.05 * body


@pytest.mark.parametrize(
    "prompt",
    ["ambient drone for sleep", "smooth jazz with saxophone", "epic cinematic trailer", "house"],
)
def test_genres_render_at_target_loudness(render: RenderFn, prompt: str) -> None:
    out = render(prompt, 6)
    assert abs(_lufs(out.audio, out.sample_rate) + 14.0) <= 1.0
    assert _peak_dbfs(out.audio) <= -0.5


# -- determinism -------------------------------------------------------------------


def test_same_seed_is_bit_identical(bundled_engine: StudioEngine, tmp_path: Path) -> None:
    def once(name: str, seed: int, fmt: str) -> npt.NDArray[np.float32]:
        request = RenderRequest(
            job_id="same-job",
            prompt="jazz in F major",
            duration_seconds=4,
            work_dir=tmp_path / name,
            seed=seed,
            output_format=fmt,
        )
        return run_render(bundled_engine, request).audio

    first, second = once("a", 123, "wav"), once("b", 123, "wav")
    assert np.array_equal(first, second)
    assert np.array_equal(once("c", 123, "mp3"), once("d", 123, "mp3"))
    other = once("e", 124, "wav")
    assert first.shape == other.shape
    assert not np.array_equal(first, other)
    assert float(np.mean(np.abs(first - other))) > 1e-3


def test_seed_defaults_to_one_derived_from_the_job(render: RenderFn) -> None:
    a = render("pop", 3, seed=None, job_id="job-abc")
    b = render("pop", 3, seed=None, job_id="job-abc", title="again")
    assert a.result.recipe["seed"] == derive_seed("job-abc")
    assert np.array_equal(a.audio, b.audio)
    assert b.result.title == "again"


def test_concurrent_renders_share_the_bank_safely(
    bundled_engine: StudioEngine, tmp_path: Path
) -> None:
    def request(name: str) -> RenderRequest:
        return RenderRequest(
            job_id=name,
            prompt="house 124 bpm",
            duration_seconds=3,
            work_dir=tmp_path / name,
            seed=5,
            output_format="wav",
        )

    results: dict[str, npt.NDArray[np.float32]] = {}

    def worker(name: str) -> None:
        results[name] = run_render(bundled_engine, request(name)).audio

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reference = run_render(bundled_engine, request("seq")).audio
    assert len(results) == 3
    for audio in results.values():
        assert np.array_equal(audio, reference)


# -- plan in the recipe --------------------------------------------------------------


def test_recipe_records_plan_and_bank(render: RenderFn) -> None:
    result = render("Lo-fi hip hop in D minor, 92 bpm", 5).result
    recipe = result.recipe
    assert recipe["tempo_bpm"] == 92
    assert recipe["key"] == "D" and recipe["mode"] == "minor"
    assert recipe["genre"] == "lofi"
    assert recipe["seed"] == 1
    assert recipe["engine"] == "studio" and recipe["engine_version"]
    assert recipe["soundfont"] == "TimGM6mb"
    assert recipe["renderer"] == "tinysoundfont"
    roles = {i["role"] for i in recipe["instruments"]}
    assert {"drums", "bass", "chords", "melody"} <= roles
    assert recipe["note_counts"]["drums"] > 0
    assert result.title == "Lo-fi Hip Hop in D minor"
    assert len(result.title) <= 80


def test_no_drums_render(render: RenderFn) -> None:
    recipe = render("boom bap hip hop without drums", 4).result.recipe
    assert recipe["drums"] is False
    assert "drums" not in {i["role"] for i in recipe["instruments"]}
    assert "drums" not in recipe["note_counts"]


# -- progress and cancellation -----------------------------------------------------


def test_progress_is_monotonic_and_frequent(render: RenderFn) -> None:
    progress = render("lo-fi hip hop for studying", 12).progress
    assert all(isinstance(p, int) for p in progress)
    assert all(0 <= p <= 99 for p in progress)
    assert progress == sorted(progress)
    assert len(progress) >= 10
    assert progress[0] == 0 and progress[-1] == 99
    assert max(b - a for a, b in itertools.pairwise(progress)) <= 10


@pytest.mark.parametrize("after_calls", [0, 3, 12, 30])
def test_cancel_raises_and_leaves_no_file(
    bundled_engine: StudioEngine, tmp_path: Path, after_calls: int
) -> None:
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > after_calls

    request = RenderRequest(job_id="c", prompt="rock", duration_seconds=8, work_dir=tmp_path)
    with pytest.raises(RenderCancelled):
        bundled_engine.render(request, lambda p: None, cancelled)
    assert list(tmp_path.iterdir()) == []


# -- banks and licences ------------------------------------------------------------


def test_capabilities_shape(bundled_engine: StudioEngine) -> None:
    assert isinstance(bundled_engine, Engine)
    caps = bundled_engine.capabilities().as_dict()
    assert set(caps) == REFERENCE_ENGINE_FIELDS
    assert caps["engine_key"] == "studio" == bundled_engine.key
    assert caps["max_duration_seconds"] == 600
    assert set(caps["modes"]) == {"creation", "focus"}
    assert caps["output_formats"][0] == "mp3"
    assert caps["supports_vocals"] is False
    assert caps["supports_lyrics"] is False
    assert caps["supports_stems"] is True
    assert caps["supported_languages"] == []


def test_bundled_timgm_is_unclear_and_needs_attribution(bundled_engine: StudioEngine) -> None:
    caps = bundled_engine.capabilities()
    assert caps.licence.licence_class == "unclear"
    assert caps.licence.commercial_use is False
    assert caps.licence.requires_attribution is True
    assert caps.licence.licence_version == "GPL-2.0 (TimGM6mb)"


def test_numpy_fallback_renders_and_is_cleared(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(soundfont=str(tmp_path / "missing.sf2"))
    engine = StudioEngine(settings, system_banks=(), use_bundled_bank=False)
    licence = engine.capabilities().licence
    assert licence.licence_class == "commercial_cleared"
    assert licence.commercial_use is True and licence.requires_attribution is False
    request = RenderRequest(
        job_id="fallback", prompt="pop song", duration_seconds=5, work_dir=tmp_path / "o", seed=3
    )
    out = run_render(engine, request)
    assert out.result.recipe["renderer"] == "numpy-synth"
    assert out.result.recipe["soundfont"] == "musicstudio-synth"
    assert out.result.licence.licence_class == "commercial_cleared"
    assert abs(out.audio.shape[0] / out.sample_rate - 5) <= 0.05
    assert _rms_dbfs(out.audio) > -35.0
    assert abs(_lufs(out.audio, out.sample_rate) + 14.0) <= 1.0
    assert _peak_dbfs(out.audio) <= -0.5


def _bundled_path() -> Path:
    path = bank_mod.bundled_bank_path()
    assert path is not None
    return path


def test_configured_unknown_bank_is_used_but_not_cleared(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    custom = tmp_path / "MyBank.sf2"
    shutil.copy(_bundled_path(), custom)
    engine = StudioEngine(make_settings(soundfont=str(custom)))
    licence = engine.capabilities().licence
    assert (licence.licence_class, licence.commercial_use, licence.requires_attribution) == (
        "unclear",
        False,
        True,
    )
    request = RenderRequest(job_id="custom", prompt="pop", duration_seconds=2, work_dir=tmp_path)
    result = engine.render(request, lambda p: None, lambda: False)
    assert result.recipe["soundfont"] == "MyBank"
    assert result.recipe["soundfont_source"] == "configured"
    assert result.licence == licence


def test_broken_configured_bank_falls_back(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    broken = tmp_path / "Broken.sf2"
    broken.write_bytes(b"not a soundfont" * 100)
    engine = StudioEngine(make_settings(soundfont=str(broken)), system_banks=())
    request = RenderRequest(job_id="b", prompt="pop", duration_seconds=2, work_dir=tmp_path / "o")
    result = engine.render(request, lambda p: None, lambda: False)
    assert result.recipe["soundfont"] == "TimGM6mb"
    assert result.licence.licence_version == "GPL-2.0 (TimGM6mb)"


@pytest.mark.parametrize(
    ("filename", "cleared"),
    [
        ("FluidR3_GM.sf2", True),
        ("MuseScore_General.sf2", True),
        ("TimGM6mb.sf2", False),
        ("GeneralUser.sf2", False),
    ],
)
def test_licence_by_bank(filename: str, cleared: bool) -> None:
    bank = bank_mod.identify_bank(Path("/banks") / filename, "configured")
    assert (bank.licence.licence_class == "commercial_cleared") is cleared
    assert bank.licence.commercial_use is cleared
    assert bank.licence.requires_attribution is not cleared


def test_fluidr3_preferred_over_bundled(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    fake_fluid = tmp_path / "FluidR3_GM.sf2"
    fake_fluid.write_bytes(b"x")
    engine = StudioEngine(make_settings(), system_banks=(fake_fluid,))
    caps = engine.capabilities()
    assert caps.licence.licence_version == "MIT (FluidR3_GM)"
    assert caps.licence.commercial_use is True


def test_bank_is_parsed_once_and_cloned() -> None:
    bank = bank_mod.identify_bank(_bundled_path(), "bundled")
    first = bank_mod.open_font(bank)
    second = bank_mod.open_font(bank)
    assert first is not None and second is not None and first is not second
    key = str(_bundled_path().resolve())
    assert key in bank_mod._LOADED
    loaded = bank_mod._LOADED[key]
    bank_mod.open_font(bank)
    assert bank_mod._LOADED[key] is loaded


# -- formats and errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime", "rate"),
    [
        ("wav", "audio/wav", 44100),
        ("flac", "audio/flac", 44100),
        ("ogg", "audio/ogg", 44100),
        ("opus", "audio/ogg", 48000),
    ],
)
def test_other_formats(render: RenderFn, fmt: str, mime: str, rate: int) -> None:
    out = render("lofi", 3, output_format=fmt)
    assert out.result.mime_type == mime
    assert out.sample_rate == rate
    assert abs(out.audio.shape[0] / rate - 3) <= 0.05
    assert _rms_dbfs(out.audio) > -35.0


@pytest.mark.parametrize(
    "changes", [{"duration_seconds": 0}, {"duration_seconds": 601}, {"output_format": "aac"}]
)
def test_invalid_requests_raise_user_safe_errors(
    bundled_engine: StudioEngine, tmp_path: Path, changes: dict[str, object]
) -> None:
    fields: dict[str, object] = {
        "job_id": "bad",
        "prompt": "pop",
        "duration_seconds": 5,
        "work_dir": tmp_path,
    }
    fields.update(changes)
    request = RenderRequest(**fields)  # type: ignore[arg-type]
    with pytest.raises(RenderError) as info:
        bundled_engine.render(request, lambda p: None, lambda: False)
    assert str(tmp_path) not in str(info.value)
    assert "/" not in str(info.value)


# -- discovery, fallbacks, cross-process determinism ----------------------------------


def test_registered_as_entry_point(make_settings: Callable[..., Settings]) -> None:
    engine = discover_engines(make_settings()).get("studio")
    assert isinstance(engine, StudioEngine)


def test_missing_tinysoundfont_falls_back_to_the_synth(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = StudioEngine(make_settings())
    monkeypatch.setattr(bank_mod, "tinysoundfont_available", lambda: False)
    assert engine.capabilities().licence.licence_class == "commercial_cleared"
    monkeypatch.undo()
    # Installed but failing to import: the render itself falls back.
    monkeypatch.setattr(bank_mod, "tsf_module", lambda: None)
    request = RenderRequest(job_id="n", prompt="rock", duration_seconds=2, work_dir=tmp_path)
    result = engine.render(request, lambda p: None, lambda: False)
    assert result.recipe["renderer"] == "numpy-synth"
    assert result.licence.commercial_use is True


_PCM_DIGEST = """
import hashlib
from pathlib import Path
from musicstudio.engines.studio import soundfont as bank_mod
from musicstudio.engines.studio.compose import compose
from musicstudio.engines.studio.encode import FORMATS
from musicstudio.engines.studio.pipeline import run_pipeline
from musicstudio.engines.studio.plan import make_plan
from musicstudio.engines.studio.render import render_part_blocks
from musicstudio.engines.studio.sf2_layout import layout_for
bank = bank_mod.identify_bank(bank_mod.bundled_bank_path(), "bundled")
arrangement = compose(make_plan("jazz trio in G minor", seed=77, duration_seconds=3))
def source(part, frames, block):
    font = bank_mod.open_font(bank)
    return render_part_blocks(
        arrangement, part, font, bank_mod.output_mode_stereo(), frames, block,
        layout=layout_for(bank.path), clone=lambda: bank_mod.open_font(bank),
        bank_id=str(bank.path),
    )
done = run_pipeline(
    arrangement, source, work_dir=Path(WORK), name="digest", fmt=FORMATS["wav"],
    duration_seconds=3.0, checkpoint=lambda f: None,
)
stems = done.stems.encode()
paths = [done.master.path, *(s.path for s in stems.values()), done.midi_path]
print(hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest())
"""


def test_render_is_identical_across_processes(tmp_path: Path) -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        work = tmp_path / hash_seed
        work.mkdir()
        code = _PCM_DIGEST.replace("WORK", repr(str(work)))
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_encoder_padding_is_compensated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # libsndfile 1.2.2 trims MP3 padding itself; simulate an encoder that adds 1105 frames
    # and check the PCM is shortened so the decoded length lands on the target.
    real = encode_mod._frames_of
    monkeypatch.setattr(encode_mod, "_frames_of", lambda path: real(path) + 1105)
    pcm = np.zeros((3 * SAMPLE_RATE, 2), dtype=np.float32)
    pcm[:, 0] = 0.1
    encoded = encode_mod.encode(pcm, SAMPLE_RATE, tmp_path / "x.wav", "wav", 3.0, lambda f: None)
    assert encoded.frames == 3 * SAMPLE_RATE
    assert sf.info(str(encoded.path)).frames == 3 * SAMPLE_RATE - 1105
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]


def test_symlinked_bank_is_identified_by_its_target(tmp_path: Path) -> None:
    target = tmp_path / "TimGM6mb.sf2"
    target.write_bytes(b"x")
    link = tmp_path / "default-GM.sf2"
    link.symlink_to(target)
    bank = bank_mod.identify_bank(link, "configured")
    assert bank.name == "TimGM6mb"
    assert bank.licence.commercial_use is False
