"""A small pure-numpy synthesiser: the fallback when no SoundFont can be used.

Each note is rendered on its own (additive partials, a little FM, envelopes) and summed
into the stereo buffer. Timbres are chosen by General MIDI family so the arrangement keeps
its character. Noise comes from a fixed-seed generator, so output is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from musicstudio.engines.studio.audio import PCM, SAMPLE_RATE, Mono
from musicstudio.engines.studio.compose import Arrangement, NoteEvent
from musicstudio.engines.studio.plan import Part

_NOISE_SECONDS = 3.0
_NYQUIST_GUARD = 16000.0


@lru_cache(maxsize=2)
def _noise(sample_rate: int) -> tuple[Mono, Mono]:
    """White and high-passed noise, identical on every call (fixed seed, cached)."""
    rng = np.random.default_rng(0x5EED)
    white = rng.standard_normal(int(_NOISE_SECONDS * sample_rate)).astype(np.float32)
    bright = np.diff(white, prepend=np.float32(0.0)).astype(np.float32) * np.float32(0.5)
    white.setflags(write=False)
    bright.setflags(write=False)
    return white, bright


def _time(n: int, sample_rate: int) -> Mono:
    return (np.arange(n, dtype=np.float32) / np.float32(sample_rate)).astype(np.float32)


def _decay(t: Mono, seconds: float) -> Mono:
    return np.asarray(np.exp(-t / np.float32(seconds)), dtype=np.float32)


def _f32(values: object) -> Mono:
    return np.asarray(values, dtype=np.float32)


def _drum(key: int, sample_rate: int) -> Mono:
    white, bright = _noise(sample_rate)
    if key in (35, 36):  # kick: a fast downward pitch sweep
        t = _time(int(0.4 * sample_rate), sample_rate)
        freq = 48.0 + 110.0 * np.exp(-t / 0.035)
        phase = 2 * np.pi * np.cumsum(freq) / sample_rate
        return _f32(np.sin(phase) * _decay(t, 0.14))
    if key in (38, 39, 40):  # snare / clap: noise burst over a short tone
        t = _time(int(0.3 * sample_rate), sample_rate)
        tone = np.sin(2 * np.pi * 190.0 * t) * _decay(t, 0.05) * 0.5
        return _f32(white[: t.size] * _decay(t, 0.08) * 0.6 + tone)
    if key == 37:  # side stick
        t = _time(int(0.06 * sample_rate), sample_rate)
        return _f32(bright[: t.size] * _decay(t, 0.01) + np.sin(2 * np.pi * 1700 * t) * 0.3)
    if key in (42, 44, 46, 70, 69, 54):  # hats and shakers
        length = {46: 0.45, 70: 0.08, 69: 0.08, 54: 0.15}.get(key, 0.08)
        t = _time(int(length * sample_rate), sample_rate)
        decay = {46: 0.15}.get(key, 0.025)
        return _f32(bright[: t.size] * _decay(t, decay) * 0.45)
    if key in (49, 57, 51, 53):  # cymbals
        length = 1.6 if key in (49, 57) else 0.9
        t = _time(int(length * sample_rate), sample_rate)
        bell = np.sin(2 * np.pi * 3200 * t) * 0.08 if key in (51, 53) else 0.0
        return _f32((bright[: t.size] * 0.35 + bell) * _decay(t, length / 3))
    if 41 <= key <= 50:  # toms: pitched by key
        t = _time(int(0.45 * sample_rate), sample_rate)
        base = 70.0 + (key - 41) * 14.0
        freq = base * (1.0 + 0.5 * np.exp(-t / 0.04))
        phase = 2 * np.pi * np.cumsum(freq) / sample_rate
        return _f32(np.sin(phase) * _decay(t, 0.18))
    t = _time(int(0.1 * sample_rate), sample_rate)
    return _f32(bright[: t.size] * _decay(t, 0.02) * 0.4)


def _envelope(n: int, hold: int, attack: int, release: int) -> Mono:
    env = np.ones(n, dtype=np.float32)
    if attack > 0:
        a = min(attack, n)
        env[:a] = np.linspace(0.0, 1.0, a, endpoint=False, dtype=np.float32)
    tail = n - hold
    if tail > 0:
        env[hold:] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)
    return env


def _tone(part: Part, event: NoteEvent, sample_rate: int) -> Mono:
    program = part.program
    family = program // 8
    freq = 440.0 * 2.0 ** ((event.key - 69) / 12.0)
    held = max(0.02, event.end - event.start)
    sustained = family in (5, 6, 11) or 88 <= program <= 95 or 48 <= program <= 55
    release = 0.5 if sustained else (0.06 if family == 4 else 0.18)
    attack = 0.12 if sustained else 0.004
    n = int((held + release) * sample_rate)
    t = _time(n, sample_rate)
    out = np.zeros(n, dtype=np.float32)
    if family in (0, 1, 3):  # piano, mallets, guitars: decaying partials
        for k in range(1, 7):
            if freq * k > _NYQUIST_GUARD:
                break
            amp = 1.0 / k**1.4
            out += amp * np.sin(2 * np.pi * freq * k * t) * _decay(t, 1.2 / (0.6 + 0.5 * k))
        if program in (29, 30):  # overdrive
            out = _f32(np.tanh(out * 3.0) * 0.5)
    elif family == 4:  # bass: fundamental-heavy
        out += np.sin(2 * np.pi * freq * t) + 0.35 * np.sin(2 * np.pi * 2 * freq * t)
        out += 0.12 * np.sin(2 * np.pi * 3 * freq * t)
        out *= _decay(t, 1.5)
    elif family == 10:  # synth leads: square-ish (odd partials) or saw
        odd_only = program == 80
        for k in range(1, 10):
            if freq * k > _NYQUIST_GUARD:
                break
            if odd_only and k % 2 == 0:
                continue
            out += np.sin(2 * np.pi * freq * k * t) / k
        out *= np.float32(0.6)
    elif family == 2:  # organ: steady drawbar partials
        for k, amp in ((1, 1.0), (2, 0.6), (3, 0.35), (4, 0.25)):
            out += amp * np.sin(2 * np.pi * freq * k * t)
        out *= np.float32(0.6)
    else:  # strings, pads, brass, reeds, pipes: two detuned saw-ish voices, gentle vibrato
        vibrato = 1.0 + 0.003 * np.sin(2 * np.pi * 5.0 * t)
        for detune in (0.997, 1.003):
            phase = 2 * np.pi * np.cumsum(freq * detune * vibrato) / sample_rate
            for k in range(1, 7):
                if freq * k > _NYQUIST_GUARD:
                    break
                out += _f32(np.sin(k * phase) / k * 0.5)
    env = _envelope(
        n, int(held * sample_rate), int(attack * sample_rate), int(release * sample_rate)
    )
    return _f32(out * env)


def synth_part_blocks(
    arrangement: Arrangement,
    part: Part,
    total_frames: int,
    block: int,
    sample_rate: int = SAMPLE_RATE,
) -> Iterator[PCM]:
    """Render one part with the built-in synth, yielded in blocks like the SoundFont renderer.

    Notes ring past block edges, so the part is summed into one full-length buffer (the
    synth is only the fallback when no bank loads); a block is handed out as soon as no
    note still to come starts inside it, so the caller can check for cancellation.
    """
    out = np.zeros((total_frames, 2), dtype=np.float32)
    drum_cache: dict[int, Mono] = {}
    # Equal-power pan from the part's CC10 value.
    angle = (part.pan / 127.0) * math.pi / 2
    left, right = math.cos(angle), math.sin(angle)
    done = 0  # frames handed out
    events = sorted(arrangement.events_on(part.channel), key=lambda e: e.start)
    for event in events:
        start = round(event.start * sample_rate)
        if start >= total_frames:
            break
        while done + block <= start:
            yield out[done : done + block]
            done += block
        if part.is_drums:
            if event.key not in drum_cache:
                drum_cache[event.key] = _drum(event.key, sample_rate)
            wave = drum_cache[event.key]
        else:
            wave = _tone(part, event, sample_rate)
        n = min(wave.size, total_frames - start)
        gain = (event.velocity / 127.0) ** 1.5 * 0.3
        out[start : start + n, 0] += wave[:n] * np.float32(gain * left)
        out[start : start + n, 1] += wave[:n] * np.float32(gain * right)
    while done < total_frames:
        yield out[done : done + block]
        done += block
