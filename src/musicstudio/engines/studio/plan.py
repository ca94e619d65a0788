"""Prompt -> plan: genre, tempo, key, instruments and structure, chosen with a seeded generator.

The plan is everything the composer needs and everything worth recording in the recipe.
All randomness comes from ``random.Random`` instances derived from the seed, so the same
prompt and seed always give the same plan.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from musicstudio.engines.studio.genres import (
    GENRES,
    GENRES_BY_KEY,
    GM_NAMES,
    INSTRUMENT_WORDS,
    MELODY_CENTER,
    Genre,
)
from musicstudio.engines.studio.theory import Mode, key_name, parse_note_name

DRUM_CHANNEL = 9
MIN_TEMPO = 40
MAX_TEMPO = 220
TITLE_MAX = 80

# Channel per role; drums must be on the General MIDI percussion channel.
_CHANNELS = {"melody": 0, "chords": 1, "bass": 2, "pad": 3, "drums": DRUM_CHANNEL}
# Channel volume (CC7) and pan (CC10) per role: melody a little right, chords left. Levels
# between parts are set after rendering (``mix.py``), so the volumes are all equal.
_MIX = {
    "melody": (100, 74),
    "chords": (100, 50),
    "bass": (100, 64),
    "pad": (100, 60),
    "drums": (100, 64),
}

_MOODS: tuple[tuple[str, str], ...] = (
    ("late night", "Late-Night"),
    ("rainy", "Rainy"),
    ("sunny", "Sunny"),
    ("dreamy", "Dreamy"),
    ("dark", "Dark"),
    ("bright", "Bright"),
    ("melancholic", "Melancholic"),
    ("melancholy", "Melancholic"),
    ("nostalgic", "Nostalgic"),
    ("happy", "Happy"),
    ("sad", "Sad"),
    ("calm", "Calm"),
    ("peaceful", "Peaceful"),
    ("gentle", "Gentle"),
    ("mysterious", "Mysterious"),
    ("hopeful", "Hopeful"),
    ("uplifting", "Uplifting"),
    ("energetic", "Energetic"),
    ("cozy", "Cozy"),
    ("warm", "Warm"),
    ("epic", "Epic"),
)
_MINOR_WORDS = ("sad", "dark", "melancholic", "melancholy", "moody", "mysterious", "tense")
_MAJOR_WORDS = ("happy", "bright", "uplifting", "joyful", "sunny", "hopeful", "cheerful")
_CALM_WORDS = ("calm", "soft", "gentle", "relaxing", "relax", "sleep", "quiet", "peaceful", "slow")
_ENERGY_WORDS = ("energetic", "upbeat", "driving", "intense", "powerful", "fast", "hype", "epic")

_BPM_RE = re.compile(r"\b(\d{2,3})\s*(?:bpm|beats per minute)\b")
# "in D minor", "key of E flat major", "F# minor": a mode word makes any case acceptable.
_KEY_WITH_MODE_RE = re.compile(
    r"\b([a-g])(\s*(?:#|♯|-?\s?sharp|-?\s?flat|b|♭))?\s*(major|minor|maj|min)\b", re.IGNORECASE
)
# "in D", "in Eb": without a mode word only a capital letter after "in"/"key of" counts,
# so "in a quiet room" is not read as A.
_KEY_BARE_RE = re.compile(r"\b(?:in|key of)\s+([A-G])(#|♯|b|♭)?(?![\w'])")
_NO_DRUMS_RE = re.compile(
    r"\b(?:no|without|zero|minus)\s+(?:any\s+)?(?:drums?|percussion|beats?|drum\s+kit)\b"
    r"|\bdrumless\b|\bno[\s-]drums\b"
)
_WITH_DRUMS_RE = re.compile(r"\bwith\s+(?:some\s+)?(?:drums|percussion|a beat|beats)\b")


@dataclass(frozen=True)
class Part:
    """One instrument in the arrangement: its role, General MIDI program and mixer place."""

    role: str
    program: int
    channel: int
    is_drums: bool
    volume: int
    pan: int
    center: int = 60

    @property
    def name(self) -> str:
        """The General MIDI instrument name."""
        return "Standard Drum Kit" if self.is_drums else GM_NAMES.get(self.program, "Instrument")

    def as_dict(self) -> dict[str, Any]:
        """The part as JSON-ready data for the recipe."""
        return {
            "role": self.role,
            "program": self.program,
            "name": self.name,
            "channel": self.channel,
            "is_drums": self.is_drums,
        }


@dataclass(frozen=True)
class Plan:
    """What to compose: the musical decisions taken from the prompt and the seed."""

    seed: int
    duration_seconds: int
    genre: Genre
    tempo_bpm: int
    key_root: int
    key_name: str
    mode: Mode
    progression: tuple[int, ...]
    parts: tuple[Part, ...]
    energy: float
    focus: bool
    mood: str | None
    title: str

    @property
    def has_drums(self) -> bool:
        """Whether the arrangement has a drum part."""
        return any(p.is_drums for p in self.parts)

    def part(self, role: str) -> Part | None:
        """The part playing ``role``, if the arrangement has one."""
        return next((p for p in self.parts if p.role == role), None)

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data for the render recipe."""
        return {
            "genre": self.genre.key,
            "genre_label": self.genre.label,
            "tempo_bpm": self.tempo_bpm,
            "key": self.key_name,
            "mode": self.mode,
            "progression": list(self.progression),
            "instruments": [p.as_dict() for p in self.parts],
            "drums": self.has_drums,
            "energy": round(self.energy, 2),
            "mood": self.mood,
            "focus": self.focus,
            "seed": self.seed,
        }


def derive_seed(job_id: str) -> int:
    """A stable 31-bit seed from a job id (``hash()`` is salted per process, so not that)."""
    digest = hashlib.sha256(job_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def sub_rng(seed: int, purpose: str) -> random.Random:
    """An independent generator per purpose, so changing one stage leaves the others' draws."""
    return random.Random(f"musicstudio-studio/{seed}/{purpose}")


def normalise_text(text: str) -> str:
    """Lower-case with hyphens/underscores as spaces, so "Lo-Fi" and "lo fi" match alike."""
    return re.sub(r"\s+", " ", re.sub(r"[-_/]", " ", text.lower())).strip()


def _find(word: str, text: str) -> int:
    match = re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text)
    return match.start() if match else -1


def choose_genre(prompt: str, style_tags: Sequence[str], focus: bool) -> Genre:
    """The genre whose keywords the prompt and tags mention most (tags count double)."""
    text = normalise_text(prompt)
    tags = normalise_text(" , ".join(style_tags))
    best: tuple[float, int, int] | None = None
    chosen: Genre | None = None
    for order, genre in enumerate(GENRES):
        score = 0.0
        first = 10**6
        for words, weight in ((genre.keywords, 1.0), (genre.hints, 0.4)):
            for word in words:
                pos = _find(word, text)
                if pos >= 0:
                    score += weight
                    first = min(first, pos)
                if _find(word, tags) >= 0:
                    score += 2 * weight
                    first = min(first, -1)
        if score <= 0:
            continue
        rank = (score, -first, -order)
        if best is None or rank > best:
            best, chosen = rank, genre
    if chosen is not None:
        return chosen
    # Focus sessions want unobtrusive music; otherwise pop is the least surprising default.
    return GENRES_BY_KEY["lofi" if focus else "pop"]


def _explicit_tempo(text: str) -> int | None:
    match = _BPM_RE.search(text)
    if match is None:
        return None
    return max(MIN_TEMPO, min(MAX_TEMPO, int(match.group(1))))


def _explicit_key(prompt: str) -> tuple[int, str, Mode | None] | None:
    match = _KEY_WITH_MODE_RE.search(prompt)
    if match is not None:
        pc, name = parse_note_name(match.group(1), match.group(2) or "")
        mode: Mode = "minor" if match.group(3).lower().startswith("min") else "major"
        return pc, name, mode
    bare = _KEY_BARE_RE.search(prompt)
    if bare is not None:
        pc, name = parse_note_name(bare.group(1), bare.group(2) or "")
        return pc, name, None
    return None


def _energy(text: str, focus: bool) -> float:
    energy = 0.6
    if any(_find(w, text) >= 0 for w in _CALM_WORDS):
        energy = 0.35
    if any(_find(w, text) >= 0 for w in _ENERGY_WORDS):
        energy = 0.85
    return energy * 0.75 if focus else energy


def _mood(text: str) -> str | None:
    hits = [(pos, label) for word, label in _MOODS if (pos := _find(word, text)) >= 0]
    return min(hits)[1] if hits else None


def _programs(genre: Genre, text: str, rng: random.Random) -> dict[str, int]:
    programs = {
        "chords": rng.choice(genre.chords),
        "bass": rng.choice(genre.bass),
        "melody": rng.choice(genre.melody),
    }
    if genre.pad:
        programs["pad"] = rng.choice(genre.pad)
    taken: set[str] = set()
    for word, role, program in INSTRUMENT_WORDS:
        if role in taken or _find(word, text) < 0:
            continue
        taken.add(role)
        current = programs.get(role)
        # Only override across families: "rock with guitar" keeps the overdriven guitar.
        if current is None or current // 8 != program // 8:
            programs[role] = program
    return programs


def _parts(genre: Genre, programs: dict[str, int], drums: bool) -> tuple[Part, ...]:
    parts: list[Part] = []
    for role in ("melody", "chords", "bass", "pad"):
        if role not in programs:
            continue
        program = programs[role]
        volume, pan = _MIX[role]
        center = MELODY_CENTER.get(program, 72) if role == "melody" else 60
        parts.append(Part(role, program, _CHANNELS[role], False, volume, pan, center))
    if drums:
        volume, pan = _MIX["drums"]
        parts.append(Part("drums", 0, DRUM_CHANNEL, True, volume, pan))
    return tuple(parts)


def make_title(genre: Genre, key: str, mode: Mode, mood: str | None) -> str:
    """A short descriptive title such as "Rainy Lo-fi Hip Hop in D minor"."""
    label = genre.label
    if mood and mood.lower() not in label.lower():
        label = f"{mood} {label}"
    return f"{label} in {key} {mode}"[:TITLE_MAX]


def make_plan(
    prompt: str,
    *,
    seed: int,
    duration_seconds: int,
    style_tags: Sequence[str] = (),
    focus: bool = False,
    title: str | None = None,
) -> Plan:
    """Turn a prompt (plus style tags) into a plan; the seed settles everything left open."""
    text = normalise_text(prompt)
    tag_text = normalise_text(" ".join(style_tags))
    both = f"{text} {tag_text}".strip()
    genre = choose_genre(prompt, style_tags, focus)
    # Per-genre streams: one seed gives different keys/tempi to different genres.
    rng = sub_rng(seed, f"plan/{genre.key}")
    energy = _energy(both, focus)

    tempo = _explicit_tempo(text)
    if tempo is None:
        low, high = genre.tempo
        span = high - low
        if energy < 0.5:
            high = low + span * 2 // 5
        elif energy > 0.8:
            low = high - span * 2 // 5
        tempo = rng.randint(low, high)

    explicit = _explicit_key(prompt)
    minor_weight = genre.minor_weight
    # A bare "minor"/"major" (no tonic named) settles the mode; mood words only lean.
    if _find("minor", both) >= 0:
        minor_weight = 1.0
    elif _find("major", both) >= 0:
        minor_weight = 0.0
    elif any(_find(w, both) >= 0 for w in _MINOR_WORDS):
        minor_weight = 0.9
    elif any(_find(w, both) >= 0 for w in _MAJOR_WORDS):
        minor_weight = 0.1
    drawn_mode: Mode = "minor" if rng.random() < minor_weight else "major"
    drawn_root = rng.randrange(12)
    if explicit is not None:
        root, name, explicit_mode = explicit
        mode: Mode = explicit_mode or drawn_mode
    else:
        root, mode = drawn_root, drawn_mode
        name = key_name(root, mode)

    progressions = genre.progressions_minor if mode == "minor" else genre.progressions_major
    progression = rng.choice(progressions)

    drums = genre.drums
    if _WITH_DRUMS_RE.search(both):
        drums = True
    if _NO_DRUMS_RE.search(both):
        drums = False

    programs = _programs(genre, both, rng)
    mood = _mood(both)
    clean_title = " ".join((title or "").split())[:TITLE_MAX]
    return Plan(
        seed=seed,
        duration_seconds=duration_seconds,
        genre=genre,
        tempo_bpm=tempo,
        key_root=root,
        key_name=name,
        mode=mode,
        progression=progression,
        parts=_parts(genre, programs, drums),
        energy=energy,
        focus=focus,
        mood=mood,
        title=clean_title or make_title(genre, name, mode, mood),
    )
