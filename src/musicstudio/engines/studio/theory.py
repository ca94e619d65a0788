"""Small music-theory helpers: modes, key names, chord symbols and voice-led voicings.

Chords are written as Roman numerals relative to the *major* scale of the tonic, with
flats/sharps for anything outside it ("i bVI bIII bVII" in a minor key, "I bVII IV" in
rock). That spelling is unambiguous whatever the mode, which is why the genre tables use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

Mode = Literal["major", "minor", "dorian", "mixolydian", "lydian", "phrygian"]
MODES: tuple[Mode, ...] = ("major", "minor", "dorian", "mixolydian", "lydian", "phrygian")
MINOR_LIKE: frozenset[str] = frozenset({"minor", "dorian", "phrygian"})

MAJOR_SCALE: tuple[int, ...] = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE: tuple[int, ...] = (0, 2, 3, 5, 7, 8, 10)
_SCALES: dict[str, tuple[int, ...]] = {
    "major": MAJOR_SCALE,
    "minor": MINOR_SCALE,
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
}
# Melody scales that are not modes: the blues genre sings over dominant chords with these.
BLUES_SCALE: tuple[int, ...] = (0, 3, 5, 6, 7, 10)
MAJOR_PENTATONIC: tuple[int, ...] = (0, 2, 4, 7, 9)
MINOR_PENTATONIC: tuple[int, ...] = (0, 3, 5, 7, 10)

# Conventional spellings: the key signature a musician would expect for each tonic.
_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def is_mode(value: object) -> bool:
    """Whether ``value`` names a supported mode."""
    return isinstance(value, str) and value in _SCALES


def as_mode(value: str) -> Mode:
    """``value`` as a ``Mode`` (aeolian/ionian accepted); ValueError otherwise."""
    value = {"aeolian": "minor", "ionian": "major"}.get(value, value)
    if value not in _SCALES:
        raise ValueError(f"unknown mode {value!r}")
    return cast(Mode, value)


def is_minor_like(mode: str) -> bool:
    """Whether a mode has a minor third (its chords and cadences are the minor ones)."""
    return mode in MINOR_LIKE


def scale_for(mode: Mode) -> tuple[int, ...]:
    """The seven scale steps (semitones above the tonic) of a mode."""
    return _SCALES[mode]


def key_name(root_pc: int, mode: str) -> str:
    """The usual spelling of a tonic pitch class (0 = C) in the given mode."""
    names = _MINOR_NAMES if is_minor_like(mode) else _MAJOR_NAMES
    return names[root_pc % 12]


def parse_note_name(letter: str, accidental: str) -> tuple[int, str]:
    """Pitch class and tidy spelling of a note name such as ("e", "flat") -> (3, "Eb")."""
    base = letter.upper()
    pc = _LETTER_PC[base]
    acc = accidental.strip().lower().lstrip("-").strip()
    if acc in ("#", "♯", "sharp"):
        return (pc + 1) % 12, base + "#"
    if acc in ("b", "♭", "flat"):
        return (pc - 1) % 12, base + "b"
    return pc, base


def parse_key_name(text: str) -> tuple[int, str] | None:
    """Pitch class and spelling of a stored key name ("F#", "Eb", "c"); None if not one."""
    match = re.fullmatch(r"\s*([A-Ga-g])\s*(#|♯|b|♭|sharp|flat)?\s*", text)
    if match is None:
        return None
    return parse_note_name(match.group(1), match.group(2) or "")


# -- chord symbols ------------------------------------------------------------------

_NUMERAL_DEGREE = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
_SYMBOL_RE = re.compile(r"^([b#]?)(vii|iii|vi|iv|ii|v|i)(.*)$", re.IGNORECASE)
# Quality suffix -> (intervals if the numeral is upper case, intervals if lower case).
_QUALITIES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "": ((0, 4, 7), (0, 3, 7)),
    "7": ((0, 4, 7, 10), (0, 3, 7, 10)),
    "maj7": ((0, 4, 7, 11), (0, 4, 7, 11)),
    "6": ((0, 4, 7, 9), (0, 3, 7, 9)),
    "9": ((0, 4, 7, 10, 14), (0, 3, 7, 10, 14)),
    "maj9": ((0, 4, 7, 11, 14), (0, 4, 7, 11, 14)),
    "add9": ((0, 4, 7, 14), (0, 3, 7, 14)),
    "sus2": ((0, 2, 7), (0, 2, 7)),
    "sus4": ((0, 5, 7), (0, 5, 7)),
    "7sus4": ((0, 5, 7, 10), (0, 5, 7, 10)),
    "o": ((0, 3, 6), (0, 3, 6)),
    "o7": ((0, 3, 6, 9), (0, 3, 6, 9)),
    "ø": ((0, 3, 6, 10), (0, 3, 6, 10)),
    "+": ((0, 4, 8), (0, 4, 8)),
}


@dataclass(frozen=True)
class Chord:
    """A chord relative to the tonic: root in semitones (0-11) and intervals above it."""

    symbol: str
    root: int
    intervals: tuple[int, ...]

    @property
    def tones(self) -> tuple[int, ...]:
        """Chord tones as semitones above the tonic (root first, may exceed 11)."""
        return tuple(self.root + i for i in self.intervals)

    def pitch_classes(self, key_root: int) -> tuple[int, ...]:
        """The chord's pitch classes in a key whose tonic is ``key_root``."""
        return tuple((key_root + t) % 12 for t in self.tones)

    @property
    def third(self) -> int:
        """Interval of the chord's third (or its suspension) above the root."""
        return next((i for i in self.intervals if 2 <= i <= 5), 4)

    @property
    def fifth(self) -> int:
        """Interval of the chord's fifth above the root."""
        return next((i for i in self.intervals if 6 <= i <= 8), 7)

    @property
    def seventh(self) -> int | None:
        """Interval of the seventh (or sixth), if the chord has one."""
        return next((i for i in self.intervals if 9 <= i <= 11), None)


def parse_chord(symbol: str) -> Chord:
    """A Roman-numeral chord symbol ("bVII", "ii7", "Imaj7", "V7sus4", "viiø") as a Chord."""
    match = _SYMBOL_RE.match(symbol.strip())
    if match is None:
        raise ValueError(f"not a chord symbol: {symbol!r}")
    accidental, numeral, suffix = match.groups()
    upper = numeral.isupper()
    if not (upper or numeral.islower()):
        raise ValueError(f"mixed-case numeral in {symbol!r}")
    suffix = suffix.replace("°", "o").replace("dim", "o").replace("m7b5", "ø")
    if suffix not in _QUALITIES:
        raise ValueError(f"unknown chord quality in {symbol!r}")
    root = MAJOR_SCALE[_NUMERAL_DEGREE[numeral.lower()]]
    root += {"b": -1, "#": 1}.get(accidental, 0)
    intervals = _QUALITIES[suffix][0 if upper else 1]
    return Chord(symbol.strip(), root % 12, intervals)


def parse_progression(text: str | Sequence[str]) -> tuple[Chord, ...]:
    """Chords from a space-separated string (or a sequence) of symbols."""
    symbols = text.split() if isinstance(text, str) else list(text)
    return tuple(parse_chord(s) for s in symbols)


def is_chord_symbol(value: object) -> bool:
    """Whether ``value`` parses as a chord symbol."""
    if not isinstance(value, str):
        return False
    try:
        parse_chord(value)
    except ValueError:
        return False
    return True


def degree_symbol(degree: int, mode: Mode) -> str:
    """The diatonic triad on a scale degree of ``mode`` as a symbol (old integer recipes)."""
    scale = scale_for(mode)
    root = scale[degree % 7]
    third = (scale[(degree + 2) % 7] - root) % 12
    fifth = (scale[(degree + 4) % 7] - root) % 12
    numerals = ("I", "II", "III", "IV", "V", "VI", "VII")
    letter_degree = degree % 7
    shift = root - MAJOR_SCALE[letter_degree]
    accidental = {-1: "b", 1: "#"}.get(shift, "")
    numeral = numerals[letter_degree]
    if third == 3:
        numeral = numeral.lower() + ("o" if fifth == 6 else "")
    return accidental + numeral


def chord_scale(mode: Mode, chord: Chord) -> tuple[int, ...]:
    """The mode's scale bent to fit a chord: a chord tone replaces the scale step beside it.

    Over "V" in a minor key this gives harmonic minor, over "IV" in minor it gives dorian,
    so melodies never rub a semitone against the harmony.
    """
    steps = list(scale_for(mode))
    for tone in (t % 12 for t in chord.tones):
        if tone in steps:
            continue
        nearest = min(range(7), key=lambda i: min((steps[i] - tone) % 12, (tone - steps[i]) % 12))
        steps[nearest] = tone
    return tuple(sorted(set(steps)))


def voicing_tones(chord: Chord, size: int) -> tuple[int, ...]:
    """At most ``size`` chord tones (semitones above the tonic), the least essential dropped.

    Third and seventh define a chord; the ninth adds colour; the root is in the bass
    anyway and the fifth adds least, so they go first when a voicing must be thin.
    """
    order = [chord.third, chord.seventh, 14, 13, 0, chord.fifth, 8, 6]
    chosen: list[int] = []
    for interval in order:
        if interval is not None and interval in chord.intervals and interval not in chosen:
            chosen.append(interval)
    for interval in chord.intervals:
        if interval not in chosen:
            chosen.append(interval)
    keep = sorted(chosen[: max(1, size)])
    return tuple(chord.root + i for i in keep)


def voice_chord(
    pitch_classes: Sequence[int], center: int, previous: Sequence[int] | None = None
) -> tuple[int, ...]:
    """MIDI notes for a chord near ``center``, moving as little as possible from ``previous``.

    Every inversion is stacked upwards from the octave that puts it closest to the
    centre; the one with the smallest total movement from the previous voicing wins,
    which is what keeps block chords from jumping around.
    """
    pcs = list(dict.fromkeys(pc % 12 for pc in pitch_classes))
    candidates: list[tuple[int, ...]] = []
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        for base_octave in range(center // 12 - 2, center // 12 + 2):
            notes = [order[0] + 12 * base_octave]
            for pc in order[1:]:
                notes.append(notes[-1] + ((pc - notes[-1]) % 12 or 12))
            candidates.append(tuple(notes))

    def cost(notes: tuple[int, ...]) -> float:
        """Total movement from the previous voicing plus distance from the centre."""
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
