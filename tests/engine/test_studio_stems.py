"""Stems, MIDI, block-wise loudness and the streaming encoders of the studio engine."""

from __future__ import annotations

import math
from pathlib import Path

import mido
import numpy as np
import numpy.typing as npt
import pretty_midi
import pyloudnorm
import pytest
import soundfile as sf
from scipy import signal

from musicstudio.engines.base import RenderCancelled, RenderRequest
from musicstudio.engines.studio import StudioEngine
from musicstudio.engines.studio.blocks_loudness import integrated_lufs, k_weighting_sos
from musicstudio.engines.studio.blocks_mp3 import count_frames, info_frame
from musicstudio.engines.studio.blocks_resample import StreamResampler
from musicstudio.engines.studio.compose import compose
from musicstudio.engines.studio.stems import SpillFile
from tests.engine.studio_helpers import Rendered, RenderFn, run_render

Audio = npt.NDArray[np.float32]


def _decode(path: Path) -> tuple[Audio, int]:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio, rate


def _stem_sum(out: Rendered) -> Audio:
    total: Audio | None = None
    for path in out.result.stems.values():
        audio, _ = _decode(path)
        total = audio if total is None else total + audio
    assert total is not None
    return total


def _roles(out: Rendered) -> list[str]:
    return [i["role"] for i in out.result.recipe["instruments"]]


# -- stems ------------------------------------------------------------------------


def test_every_part_has_a_stem_of_the_right_length(render: RenderFn) -> None:
    out = render("lo-fi hip hop for studying", 12)
    stems = out.result.stems
    assert set(_roles(out)) <= set(stems)
    assert set(stems) - set(_roles(out)) <= {"room"}  # the reverb return, if any
    recipe_names = [s["name"] for s in out.result.recipe["stems"]]
    assert recipe_names == list(stems)
    for name, path in stems.items():
        assert path.parent == out.result.audio_path.parent
        assert path.suffix == ".flac"  # lossless stems for a lossy master
        info = sf.info(str(path))
        assert info.channels == 2 and info.samplerate == 44100
        assert abs(info.duration - 12) <= 0.05, name
    for entry in out.result.recipe["stems"]:
        assert entry["format"] == "flac"
        assert entry["file"] == stems[entry["name"]].name
        audio, _ = _decode(stems[entry["name"]])
        assert float(np.abs(audio).max()) <= 10 ** (-1.0 / 20), entry["name"]


def test_stems_add_up_to_the_master(render: RenderFn) -> None:
    # WAV master: the only difference left is 16-bit rounding (and any stem safety limit).
    out = render("house 124 bpm", 10, output_format="wav")
    assert out.result.recipe["stems_format"] == "wav"
    total = _stem_sum(out)
    master = out.audio
    assert total.shape == master.shape
    error = float(np.mean(np.square(total - master)) / np.mean(np.square(master)))
    assert 10 * math.log10(error) < -30.0
    assert np.corrcoef(total.ravel(), master.ravel())[0, 1] > 0.999


def test_stems_add_up_to_the_mp3_master(render: RenderFn) -> None:
    out = render("lo-fi hip hop for studying", 12)
    total = _stem_sum(out)
    # MP3 coding noise is the difference; the decoded MP3 is aligned sample for sample.
    assert np.corrcoef(total.ravel(), out.audio.ravel())[0, 1] > 0.99


def test_stems_never_clip(render: RenderFn) -> None:
    out = render("energetic rock anthem", 8, output_format="wav")
    for path in out.result.stems.values():
        audio, _ = _decode(path)
        assert float(np.max(np.abs(audio))) <= 10 ** (-1.0 / 20) + 1e-4


def test_no_drums_means_no_drums_stem(render: RenderFn) -> None:
    out = render("boom bap hip hop without drums", 4)
    assert "drums" not in _roles(out)
    assert "drums" not in out.result.stems
    assert out.result.stems  # the other parts still have theirs


def test_stems_are_deterministic(bundled_engine: StudioEngine, tmp_path: Path) -> None:
    def once(name: str) -> list[bytes]:
        request = RenderRequest(
            job_id="same", prompt="jazz", duration_seconds=3, work_dir=tmp_path / name, seed=9
        )
        result = run_render(bundled_engine, request).result
        assert result.midi_path is not None
        paths = [result.audio_path, *result.stems.values(), result.midi_path]
        return [p.read_bytes() for p in paths]

    assert once("a") == once("b")


# -- MIDI -------------------------------------------------------------------------


def test_midi_parses_back_with_tempo_programs_and_notes(
    bundled_engine: StudioEngine, render: RenderFn
) -> None:
    out = render("Lo-fi hip hop in D minor, 92 bpm", 10)
    result = out.result
    assert result.midi_path is not None and result.midi_path.suffix == ".mid"
    assert result.midi_path.parent == result.audio_path.parent
    pm = pretty_midi.PrettyMIDI(str(result.midi_path))
    _, tempi = pm.get_tempo_changes()
    assert abs(float(tempi[0]) - 92) <= 1
    arrangement = compose(
        bundled_engine.plan(
            RenderRequest(
                job_id="x",
                prompt="Lo-fi hip hop in D minor, 92 bpm",
                duration_seconds=10,
                work_dir=Path("."),
                seed=1,
            )
        )
    )
    plan = arrangement.plan
    assert len(pm.instruments) == len(plan.parts)
    for part, instrument in zip(plan.parts, pm.instruments, strict=True):
        assert instrument.is_drum == part.is_drums
        assert instrument.program == part.program
        expected = sum(1 for e in arrangement.events_on(part.channel) if e.start < 10)
        assert len(instrument.notes) == expected
        assert expected == result.recipe["midi"]["note_counts"][part.role]
    assert result.recipe["midi"]["file"] == result.midi_path.name


def test_midi_drums_are_on_channel_ten(render: RenderFn) -> None:
    result = render("rock", 5).result
    assert result.midi_path is not None
    channels: dict[str, set[int]] = {}
    for track in mido.MidiFile(str(result.midi_path)).tracks[1:]:
        name = next(m.name for m in track if m.type == "track_name")
        channels[name] = {m.channel for m in track if m.type == "note_on"}
    drums = [name for name in channels if "Drum" in name or "Kit" in name]
    assert drums and all(channels[name] == {9} for name in drums)
    assert all(9 not in chans for name, chans in channels.items() if name not in drums)


# -- progress and cancel ---------------------------------------------------------


def test_cancel_at_any_stage_leaves_nothing(bundled_engine: StudioEngine, tmp_path: Path) -> None:
    def request(name: str) -> RenderRequest:
        return RenderRequest(
            job_id="c", prompt="rock", duration_seconds=6, work_dir=tmp_path / name
        )

    checks = 0

    def count() -> bool:
        nonlocal checks
        checks += 1
        return False

    bundled_engine.render(request("full"), lambda p: None, count)
    assert checks >= 20
    for fraction in (0.3, 0.6, 0.8, 0.95):
        calls = 0
        limit = int(checks * fraction)

        def cancelled(limit: int = limit) -> bool:
            nonlocal calls
            calls += 1
            return calls > limit

        work = tmp_path / f"cancel-{fraction}"
        with pytest.raises(RenderCancelled):
            bundled_engine.render(request(work.name), lambda p: None, cancelled)
        assert list(work.iterdir()) == []


# -- loudness ---------------------------------------------------------------------


def test_k_weighting_matches_the_standard_at_48k() -> None:
    sos = k_weighting_sos(48000)
    shelf = [
        1.53512485958697,
        -2.69169618940638,
        1.19839281085285,
        1.0,
        -1.69065929318241,
        0.73248077421585,
    ]
    rlb = [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]
    assert np.allclose(sos[0], shelf, atol=1e-9)
    assert np.allclose(sos[1], rlb, atol=1e-9)


def test_sine_reads_as_the_standard_says() -> None:
    # BS.1770: a 997 Hz sine at 0 dBFS in one channel reads -3.01 LKFS.
    t = np.arange(10 * 48000) / 48000
    tone = np.zeros((t.size, 2), dtype=np.float32)
    tone[:, 0] = np.sin(2 * np.pi * 997 * t)
    assert integrated_lufs(tone, 48000) == pytest.approx(-3.01, abs=0.02)
    assert integrated_lufs(tone * np.float32(0.1), 48000) == pytest.approx(-23.01, abs=0.02)
    assert integrated_lufs(np.zeros((48000, 2), dtype=np.float32), 48000) == -math.inf


@pytest.mark.parametrize(
    "prompt", ["lo-fi hip hop for studying", "house 124 bpm", "ambient drone for sleep", "rock"]
)
def test_block_loudness_agrees_with_pyloudnorm(render: RenderFn, prompt: str) -> None:
    out = render(prompt, 12, output_format="wav")
    reference = float(pyloudnorm.Meter(out.sample_rate).integrated_loudness(out.audio))
    assert integrated_lufs(out.audio, out.sample_rate) == pytest.approx(reference, abs=0.2)
    assert integrated_lufs(out.audio, out.sample_rate, decimate=2) == pytest.approx(
        reference, abs=0.2
    )
    # The master's own measurement (before 16-bit rounding) is the one in the recipe.
    assert out.result.recipe["integrated_lufs"] == pytest.approx(reference, abs=0.2)
    assert abs(out.result.recipe["integrated_lufs"] + 14.0) <= 0.5


# -- encoders ---------------------------------------------------------------------


def test_streaming_resampler_equals_whole_signal_resampling() -> None:
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((44100 * 2 + 123, 2)).astype(np.float32)
    reference = signal.resample_poly(audio, 160, 147, axis=0)
    resampler = StreamResampler(44100, 48000)
    parts = [resampler.push(audio[i : i + 10000]) for i in range(0, audio.shape[0], 10000)]
    streamed = np.concatenate([*parts, resampler.finish()])
    assert streamed.shape == reference.shape
    assert np.allclose(streamed, reference, atol=1e-5)


def test_info_frame_gives_exact_gapless_length(tmp_path: Path) -> None:
    # Re-tag an MP3 written by libsndfile (LAME, which delays by 576 samples) with our own
    # Info frame: mpg123 must drop exactly the delay and padding the tag announces.
    frames = 44100 + 777
    audio = (0.3 * np.sin(np.arange(frames) / 20.0)).astype(np.float32)
    source = tmp_path / "source.mp3"
    sf.write(str(source), np.stack([audio, audio], axis=1), 44100, format="MP3")
    data = source.read_bytes()
    start = data.index(b"\xff\xfb")
    body = data[start + _frame_size(data, start) :]  # drop libsndfile's own tag frame
    if body[-128:-125] == b"TAG":
        body = body[:-128]
    count = count_frames(body, 44100)
    header = info_frame(
        bitrate_kbps=128,
        sample_rate=44100,
        audio_frames=count,
        total_bytes=len(body) + 417,
        delay=576,
        padding=count * 1152 - 576 - frames,
    )
    assert len(header) == 417
    retagged = tmp_path / "retagged.mp3"
    retagged.write_bytes(header + body)
    decoded, _ = _decode(retagged)
    original, _ = _decode(source)
    assert decoded.shape[0] == frames
    assert np.array_equal(decoded, original)


def _frame_size(data: bytes, pos: int) -> int:
    bitrates = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
    return 144_000 * bitrates[data[pos + 2] >> 4] // 44100 + (data[pos + 2] >> 1 & 1)


def test_lame_writer_is_gapless_and_aligned(tmp_path: Path) -> None:
    from musicstudio.engines.studio.blocks_mp3 import LameWriter

    frames = 3 * 44100 + 1001
    t = np.arange(frames) / 44100
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)[:, None] * np.ones(2)).astype(np.float32)
    path = tmp_path / "x.mp3"
    writer = LameWriter(path, 44100)
    for start in range(0, frames, 30000):
        writer.write(audio[start : start + 30000])
    writer.close()
    decoded, rate = _decode(path)
    assert rate == 44100 and decoded.shape[0] == frames
    # Aligned to the sample: the error is MP3 noise, far below a one-sample shift's.
    middle = slice(4410, frames - 4410)
    assert float(np.sqrt(np.mean((decoded[middle] - audio[middle]) ** 2))) < 0.01


def test_spill_round_trips(tmp_path: Path) -> None:
    audio = np.random.default_rng(1).standard_normal((10_000, 2)).astype(np.float32)
    spill = SpillFile(tmp_path, "x", 42)
    for start in range(0, 10_000, 4200):
        spill.write(audio[start : start + 4200])
    back = np.concatenate([b.copy() for b in spill.blocks(3000)])
    assert np.array_equal(back, audio)
    peaks = spill.peaks()
    assert peaks.size == math.ceil(10_000 / 42)
    assert float(peaks.max()) == float(np.abs(audio).max())
    spill.remove()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("root", "mode", "sharps", "minor"),
    [
        (0, "major", 0, 0),  # C major
        (9, "minor", 0, 1),  # A minor
        (4, "dorian", 2, 1),  # E dorian: D major's two sharps
        (7, "mixolydian", 0, 0),  # G mixolydian: C major's none
        (5, "lydian", 0, 0),  # F lydian: C major
        (2, "minor", -1, 1),  # D minor: one flat
        (10, "major", -2, 0),  # Bb major: two flats
        (11, "phrygian", 1, 1),  # B phrygian: G major's one sharp
    ],
)
def test_midi_key_signature_follows_the_mode(root: int, mode: str, sharps: int, minor: int) -> None:
    from musicstudio.engines.studio.midi import _key_signature

    event = _key_signature(root, mode)
    assert event[:3] == b"\xff\x59\x02"
    assert int.from_bytes(event[3:4], "big", signed=True) == sharps
    assert event[4] == minor


def test_spill_peaks_read_back_match_peaks_tracked_while_writing(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((50_000, 2)) * 0.2).astype(np.float32)
    tracked = SpillFile(tmp_path, "tracked", 42)
    untracked = SpillFile(tmp_path, "untracked", 42, track_peaks=False)
    for start in range(0, audio.shape[0], 4410):
        tracked.write(audio[start : start + 4410])
        untracked.write(audio[start : start + 4410])
    tracked.finish()
    untracked.finish()
    assert np.array_equal(untracked.peaks(), tracked.peaks())
    assert tracked.peaks().size == -(-50_000 // 42)


def test_part_level_meter_is_block_size_independent_and_gates_silence() -> None:
    from musicstudio.engines.studio.mix import LevelMeter

    rate = 44100
    t = np.arange(10 * rate) / rate
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    audio = np.stack([tone, tone], axis=1)
    audio[5 * rate :] = 0.0  # half silent: the gate ignores it
    whole, pieces = LevelMeter(rate), LevelMeter(rate)
    whole.add(audio)
    for start in range(0, audio.shape[0], 12_345):
        pieces.add(audio[start : start + 12_345])
    level = whole.level_db()
    assert level is not None and pieces.level_db() == pytest.approx(level, abs=1e-4)
    # mono sum of two 0.1-peak channels: RMS 0.2/sqrt(2) -> -17.0 dB, tone well above 120 Hz
    assert level == pytest.approx(20 * math.log10(0.2 / math.sqrt(2)), abs=0.2)
    silent = LevelMeter(rate)
    silent.add(np.zeros((rate, 2), np.float32))
    assert silent.level_db() is None


def test_midi_carries_the_level_ride_as_expression(tmp_path: Path) -> None:
    from musicstudio.engines.studio.midi import write_midi
    from musicstudio.engines.studio.plan import make_plan

    arrangement = compose(make_plan("pop", seed=5, duration_seconds=90))
    path = write_midi(arrangement, tmp_path / "pop.mid")
    pm = pretty_midi.PrettyMIDI(str(path))
    for part, instrument in zip(arrangement.plan.parts, pm.instruments, strict=True):
        expression = [c for c in instrument.control_changes if c.number == 11]
        lane = arrangement.level_lane(part.channel)
        if not lane:
            assert not expression, part.role
            continue
        values = [c.value for c in expression]
        assert max(values) == 127 and len(set(values)) > 1, part.role
        # Each level the lane holds appears, relative to its loudest point.
        top = max(g for _, g in lane)
        assert {round(127 * g / top) for _, g in lane} <= set(values), part.role
