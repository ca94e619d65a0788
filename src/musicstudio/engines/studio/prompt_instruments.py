"""Instrumentation: which General MIDI program plays each role, and the ``Part`` type.

The genre offers alternatives per role (the seed picks), moods add colour (a pad for
"dreamy", strings for "sad"), named instruments override, and a continued track's
instruments override everything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from musicstudio.engines.studio.genres import Genre
from musicstudio.engines.studio.prompt import PromptCues
from musicstudio.engines.studio.prompt_continuation import Carried
from musicstudio.engines.studio.prompt_words import (
    GENERIC_WORDS,
    GM_NAMES,
    KIT_NAMES,
    MELODY_CENTER,
)

DRUM_CHANNEL = 9
PITCHED_ROLES = ("melody", "chords", "bass", "pad")
# Channel per role; drums must be on the General MIDI percussion channel.
CHANNELS = {"melody": 0, "chords": 1, "bass": 2, "pad": 3, "drums": DRUM_CHANNEL}
# Channel volume (CC7) and pan (CC10) per role: melody a little right, chords left. Levels
# between parts are set after rendering (``mix.py``), so the volumes are all equal.
_MIX = {
    "melody": (100, 74),
    "chords": (100, 50),
    "bass": (100, 64),
    "pad": (100, 60),
    "drums": (100, 64),
}


@dataclass(frozen=True)
class Part:
    """One instrument in the arrangement: its role, General MIDI program and mixer place.

    For the drum part ``program`` is the GS drum-kit number (0 standard, 25 TR-808, ...).
    """

    role: str
    program: int
    channel: int
    is_drums: bool
    volume: int
    pan: int
    center: int = 60

    @property
    def name(self) -> str:
        """The General MIDI instrument (or drum kit) name."""
        if self.is_drums:
            return KIT_NAMES.get(self.program, "Standard Drum Kit")
        return GM_NAMES.get(self.program, "Instrument")

    def as_dict(self) -> dict[str, Any]:
        """The part as JSON-ready data for the recipe."""
        return {
            "role": self.role,
            "program": self.program,
            "name": self.name,
            "channel": self.channel,
            "is_drums": self.is_drums,
        }


def make_part(role: str, program: int) -> Part:
    """A part with the standard channel, mixer place and register for its role."""
    volume, pan = _MIX[role]
    if role == "drums":
        return Part(role, program, DRUM_CHANNEL, True, volume, pan)
    center = MELODY_CENTER.get(program, 72) if role == "melody" else 60
    return Part(role, program, CHANNELS[role], False, volume, pan, center)


def _pick(options: tuple[int, ...], draw: float) -> int:
    return options[min(len(options) - 1, int(draw * len(options)))]


def choose_parts(
    genre: Genre,
    cues: PromptCues,
    rng: random.Random,
    carried: Carried | None = None,
    *,
    focus: bool = False,
    intensity: str | None = None,
) -> tuple[Part, ...]:
    """The parts of the arrangement (melody, chords, bass, optional pad and drums)."""
    programs: dict[str, int] = {
        "chords": rng.choice(genre.chords),
        "bass": rng.choice(genre.bass),
        "melody": rng.choice(genre.melody),
    }
    pad_draw, melody_draw, colour_draw = rng.random(), rng.random(), rng.random()
    if genre.pad:
        programs["pad"] = _pick(genre.pad, pad_draw)
    for mood in cues.moods:
        if mood.pad and "pad" not in programs:
            programs["pad"] = _pick(mood.pad, pad_draw)
        if mood.melody and colour_draw < 0.5:
            programs["melody"] = _pick(mood.melody, melody_draw)
    kit = genre.kit
    drums = genre.drums
    named: set[str] = set()
    lead: int | None = None
    for word in cues.instruments:
        if word.role == "kit":
            kit, drums = word.program, True
            continue
        if word.role in named:
            continue  # the first instrument named for a role wins
        named.add(word.role)
        if word.phrase.startswith("808") and kit == 0:
            kit = 25
        current = programs.get(word.role)
        # A generic word keeps the genre's choice in that family ("rock with guitar").
        generic = word.phrase in GENERIC_WORDS
        if generic and current is not None and current // 8 == word.program // 8:
            continue
        programs[word.role] = word.program
        if word.role == "chords" and (word.program < 8 or 24 <= word.program < 32):
            lead = word.program  # a named piano or guitar also carries the tune...
    if lead is not None and "melody" not in named:
        programs["melody"] = lead  # ...unless another instrument was named for it
    if focus and intensity == "low":
        drums = False  # the quietest focus music keeps time with harmony alone
    if carried is not None and carried.programs:
        pitched = {r: p for r, p in carried.programs.items() if r in PITCHED_ROLES}
        if pitched:
            programs = pitched
        drums = "drums" in carried.programs
        kit = carried.programs.get("drums", kit)
    if cues.drums is not None:
        drums = cues.drums
    parts = [make_part(role, programs[role]) for role in PITCHED_ROLES if role in programs]
    if drums:
        parts.append(make_part("drums", kit))
    return tuple(parts)
