"""Song form: sections sized to the duration, ending on a held final chord.

The piece is laid out in whole 4/4 bars. The last bar that leaves room for the final
chord to ring (``ring_beats``) becomes the ``end`` section; the bars before it are shared
between an intro, the middle sections of the genre's form and an outro. A clip shorter
than ~12 s gets a single phrase and the ending, so even a 5 s clip closes on a cadence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BEATS_PER_BAR = 4
SHORT_CLIP_SECONDS = 12.0
FOCUS_SEGMENT_SECONDS = 120.0

# Middle sections per form style, then a tail that repeats while there is time left.
_SEQUENCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "song": (("verse", "chorus", "verse", "chorus", "bridge", "chorus"), ("verse", "chorus")),
    "through": (("verse", "chorus", "bridge", "verse", "chorus"), ("bridge", "chorus")),
    "club": (("build", "drop", "breakdown", "build", "drop"), ("breakdown", "build", "drop")),
    "blues": (("verse", "chorus", "chorus", "verse"), ("chorus",)),
}
_NOMINAL_BARS = {"verse": 8, "chorus": 8, "bridge": 8, "build": 4, "drop": 8, "breakdown": 8}
# Dynamics per section (0..1): intro softer, chorus louder, breakdown thin.
_ENERGY = {
    "intro": 0.45,
    "verse": 0.65,
    "chorus": 0.9,
    "bridge": 0.6,
    "breakdown": 0.35,
    "build": 0.65,
    "drop": 1.0,
    "outro": 0.5,
    "phrase": 0.75,
    "end": 0.6,
}
# Which progression a section plays (see ``Plan.progressions``).
_HARMONY = {
    "intro": "verse",
    "verse": "verse",
    "chorus": "chorus",
    "bridge": "bridge",
    "breakdown": "bridge",
    "build": "verse",
    "drop": "chorus",
    "outro": "verse",
    "phrase": "verse",
    "end": "final",
}


@dataclass(frozen=True)
class Section:
    """A run of bars with one role in the form."""

    name: str  # intro | verse | chorus | bridge | build | drop | breakdown | outro | phrase | end
    start_bar: int
    bars: int
    energy: float
    harmony: str  # verse | chorus | bridge | final: the progression it plays
    segment: int = 0  # focus pieces are made of segments with soft edges

    @property
    def end_bar(self) -> int:
        """The bar after the section's last one."""
        return self.start_bar + self.bars

    def as_dict(self) -> dict[str, Any]:
        """The section as JSON-ready data for the recipe."""
        return {
            "name": self.name,
            "start_bar": self.start_bar,
            "bars": self.bars,
            "energy": round(self.energy, 2),
            "segment": self.segment,
        }


def ring_beats(tempo_bpm: float) -> float:
    """Beats left after the final chord is struck: about 1.6 s, 1.5 to 4 beats."""
    return max(1.5, min(4.0, 1.6 * tempo_bpm / 60.0))


def body_bars(duration_seconds: float, tempo_bpm: float) -> int:
    """Whole bars before the final chord."""
    total_beats = duration_seconds * tempo_bpm / 60.0
    return max(0, int((total_beats - ring_beats(tempo_bpm)) // BEATS_PER_BAR))


def _middle(style: str, bars: int, requested: frozenset[str]) -> list[tuple[str, int]]:
    """Middle sections of the form filling exactly ``bars`` bars."""
    if bars <= 0:
        return []
    head, tail = _SEQUENCES[style]
    sequence = list(head)
    if "breakdown" in requested and "breakdown" not in sequence:
        sequence.insert(min(2, len(sequence)), "breakdown")
    if "bridge" in requested and "bridge" not in sequence[:4]:
        sequence.insert(min(2, len(sequence)), "bridge")
    # Short pieces get half-length sections so they still have a verse and a chorus.
    scale = 1.0 if bars >= 24 or style == "blues" else 0.5
    out: list[tuple[str, int]] = []
    left = bars
    index = 0
    while left > 0:
        name = (
            sequence[index] if index < len(sequence) else tail[(index - len(sequence)) % len(tail)]
        )
        nominal = 12 if style == "blues" else max(4, int(_NOMINAL_BARS[name] * scale))
        length = nominal if left - nominal >= 4 or left == nominal else left
        out.append((name, length))
        left -= length
        index += 1
    # Finish on the form's climax, not on a verse or a breakdown.
    climax = "drop" if style == "club" else "chorus"
    if len(out) > 1 and out[-1][0] != climax:
        out[-1] = (climax, out[-1][1])
    return out


def _edges(style: str, bars: int, requested: frozenset[str], focus: bool, continuation: bool
           ) -> tuple[int, int]:  # fmt: skip
    """Intro and outro lengths for a body of ``bars`` bars."""
    if focus:
        edge = 2 if bars < 32 else 4
        return edge, edge
    long_edge = 8 if style == "club" else 4
    intro = 0
    if "intro" in requested and bars >= 8:
        intro = 2 if bars < 24 else long_edge
    elif bars >= 12 and not continuation:
        intro = 2 if bars < 40 else long_edge
    outro = 0
    if "outro" in requested and bars >= 8:
        outro = 2 if bars < 24 else long_edge
    elif bars >= 24:
        outro = 2 if bars < 48 else long_edge
    return intro, outro


def _segment(
    style: str,
    bars: int,
    start: int,
    requested: frozenset[str],
    focus: bool,
    continuation: bool,
    segment: int,
) -> list[Section]:
    intro, outro = _edges(style, bars, requested, focus, continuation)
    middle = bars - intro - outro
    if middle < 4:
        intro, outro, middle = 0, 0, bars
    # Spare bars (less than a phrase) lengthen the intro, which has no phrase to break.
    unit = 12 if style == "blues" else 4
    spare = middle % unit
    fits_intro = intro > 0 or (spare <= 2 and not continuation)
    if 0 < spare <= 4 and fits_intro and middle - spare >= unit:
        intro += spare
        middle -= spare
    names: list[tuple[str, int]] = []
    if intro:
        names.append(("intro", intro))
    names += _middle(style, middle, requested)
    if outro:
        names.append(("outro", outro))
    sections: list[Section] = []
    choruses = 0
    for name, length in names:
        energy = _ENERGY[name]
        if name in ("chorus", "drop"):
            # Later choruses lift a little: the form should grow, not loop.
            energy = min(1.0, energy + 0.04 * choruses)
            choruses += 1
        harmony = _HARMONY[name]
        if focus:
            energy = 0.3 + 0.3 * energy
            if segment % 2 == 1 and harmony == "verse":
                harmony = "bridge"
        sections.append(Section(name, start, length, energy, harmony, segment))
        start += length
    return sections


def plan_form(
    *,
    duration_seconds: float,
    tempo_bpm: float,
    style: str,
    requested: Sequence[str] = (),
    focus: bool = False,
    continuation: bool = False,
) -> tuple[Section, ...]:
    """Sections covering the piece, the last one the ``end`` (final chord and ring-out).

    ``style`` is the genre's form (song, club, blues, through); ``requested`` are structure
    words from the prompt (intro, build, drop, breakdown, bridge, outro); ``focus`` gives
    every segment soft edges; ``continuation`` drops the intro (the piece carries on).
    """
    wanted = frozenset(requested)
    if style not in _SEQUENCES:
        style = "song"
    if style != "club" and wanted & {"build", "drop"}:
        style = "club"
    bars = body_bars(duration_seconds, tempo_bpm)
    sections: list[Section] = []
    if bars > 0 and (duration_seconds < SHORT_CLIP_SECONDS or bars < 6):
        sections.append(Section("phrase", 0, bars, _ENERGY["phrase"], "verse"))
    elif bars > 0:
        count = 1
        if focus and duration_seconds >= 1.5 * FOCUS_SEGMENT_SECONDS:
            count = max(1, round(duration_seconds / FOCUS_SEGMENT_SECONDS))
        start = 0
        for index in range(count):
            length = bars // count + (1 if index < bars % count else 0)
            sections += _segment(style, length, start, wanted, focus, continuation, index)
            start += length
    end_energy = 0.35 if focus else _ENERGY["end"]
    segment = sections[-1].segment if sections else 0
    sections.append(Section("end", bars, 1, end_energy, "final", segment))
    return tuple(sections)
