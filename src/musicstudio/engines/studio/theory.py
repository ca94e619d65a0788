"""Small music-theory helpers: key names, scales, diatonic chords and voice-led voicings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Mode = Literal["major", "minor"]

MAJOR_SCALE: tuple[int, ...] = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE: tuple[int, ...] = (0, 2, 3, 5, 7, 8, 10)

# Conventional spellings: the key signature a musician would expect for each tonic.
_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def scale_for(mode: Mode) -> tuple[int, ...]:
    """The seven scale steps (semitones above the tonic) of a mode."""
    return MAJOR_SCALE if mode == "major" else MINOR_SCALE


def key_name(root_pc: int, mode: Mode) -> str:
    """The usual spelling of a tonic pitch class (0 = C) in the given mode."""
    names = _MAJOR_NAMES if mode == "major" else _MINOR_NAMES
    return names[root_pc % 12]


def parse_note_name(letter: str, accidental: str) -> tuple[int, str]:
    """Pitch class and tidy spelling of a note name such as ("e", "flat") -> (3, "Eb")."""
    base = letter.upper()
    pc = _LETTER_PC[base]
    acc = accidental.strip().lower().lstrip("-")
    if acc in ("#", "♯", "sharp"):
        return (pc + 1) % 12, base + "#"
    if acc in ("b", "♭", "flat"):
        return (pc - 1) % 12, base + "b"
    return pc, base


def degree_pitch(degree: int, scale: Sequence[int]) -> int:
    """Semitones above the tonic of a (possibly negative or > 6) scale degree."""
    octave, step = divmod(degree, len(scale))
    return scale[step] + 12 * octave


def diatonic_chord(
    degree: int, mode: Mode, size: int = 3, raise_leading_tone: bool = False
) -> tuple[int, ...]:
    """Chord tones (semitones above the tonic, root first) built in thirds on a scale degree.

    ``raise_leading_tone`` turns the minor-key dominant into a major chord (harmonic
    minor), which classical and jazz cadences need to sound resolved.
    """
    scale = scale_for(mode)
    tones = [degree_pitch(degree + 2 * i, scale) for i in range(size)]
    if raise_leading_tone and mode == "minor" and degree % 7 == 4:
        tones = [t + 1 if (t % 12) == 10 else t for t in tones]
    return tuple(tones)


def voice_chord(
    pitch_classes: Sequence[int], center: int, previous: Sequence[int] | None = None
) -> tuple[int, ...]:
    """MIDI notes for a chord near ``center``, moving as little as possible from ``previous``.

    Every inversion is stacked upwards from the octave that puts it closest to the
    centre; the one with the smallest total movement from the previous voicing wins,
    which is what keeps block chords from jumping around.
    """
    pcs = [pc % 12 for pc in pitch_classes]
    candidates: list[tuple[int, ...]] = []
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        for base_octave in range(center // 12 - 2, center // 12 + 2):
            notes = [order[0] + 12 * base_octave]
            for pc in order[1:]:
                nxt = notes[-1] + ((pc - notes[-1]) % 12 or 12)
                notes.append(nxt)
            candidates.append(tuple(notes))

    def cost(notes: tuple[int, ...]) -> float:
        mid = sum(notes) / len(notes)
        spread = abs(mid - center)
        if previous is None or len(previous) != len(notes):
            return spread
        movement = sum(abs(a - b) for a, b in zip(sorted(previous), notes, strict=True))
        # A little pull to the centre stops a long progression drifting off the keyboard.
        return movement + 0.35 * spread

    return min(candidates, key=cost)


def nearest_in(pitch: int, allowed_pcs: Sequence[int]) -> int:
    """The MIDI note closest to ``pitch`` whose pitch class is in ``allowed_pcs`` (ties go up)."""
    allowed = {pc % 12 for pc in allowed_pcs}
    for distance in range(12):
        if (pitch + distance) % 12 in allowed:
            return pitch + distance
        if (pitch - distance) % 12 in allowed:
            return pitch - distance
    return pitch


def fold_into(pitch: int, low: int, high: int) -> int:
    """Move ``pitch`` by octaves until it lies in ``[low, high]`` (when the range allows)."""
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch
