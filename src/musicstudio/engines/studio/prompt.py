"""English prompt (plus style tags) -> cues: what the words ask for, before any dice are rolled.

The parser only recognises; it decides nothing that needs the seed. Unknown words are
ignored, and every cue is optional: ``plan.py`` fills the gaps from the genre profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from musicstudio.engines.studio.genres import GENRES, GENRES_BY_KEY, Genre
from musicstudio.engines.studio.prompt_words import (
    INSTRUMENT_WORDS,
    MOODS,
    STRUCTURE_WORDS,
    TEMPO_WORDS,
    TITLE_WORDS,
    InstrumentWord,
    Mood,
)
from musicstudio.engines.studio.theory import Mode, as_mode, parse_note_name

MIN_TEMPO = 40
MAX_TEMPO = 220

_MODE_WORDS = r"major|minor|maj|min|dorian|mixolydian|lydian|phrygian|aeolian|ionian"
_BPM_RE = re.compile(
    r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute|beats a minute)\b"
    r"|\b(?:bpm|tempo)\s*(?:of|at|=|:|is)?\s*(\d{2,3}(?:\.\d+)?)\b"
)
# "in D minor", "key of E flat major", "F# dorian": a mode word makes any case acceptable.
_KEY_WITH_MODE_RE = re.compile(
    r"\b([a-g])(\s*(?:#|♯|-?\s?sharp|-?\s?flat|b|♭))?\s*(" + _MODE_WORDS + r")\b", re.IGNORECASE
)
# "in D", "in Eb", "key of Am": without a mode word only a capital letter after "in"/"key of"
# counts, so "in a quiet room" is not read as A.
_KEY_BARE_RE = re.compile(r"\b(?:in|key of|key)\s+([A-G])(#|♯|b|♭)?(m)?(?![\w'#♯])")
_MODE_ONLY_RE = re.compile(r"\b(" + _MODE_WORDS + r")(?:\s+key)?\b")
_NO_DRUMS_RE = re.compile(
    r"\b(?:no|without|zero|minus|w o|sans)\s+(?:any\s+|the\s+)?(?:drums?|percussion|beats?|"
    r"drum\s+kit|rhythm\s+section)\b|\bdrumless\b|\bbeatless\b|\bdrums?\s+off\b"
    r"|\ba cappella\b"
)
_DRUM_WORDS_RE = re.compile(r"\b(?:drums|percussion|drum kit|drumkit|a beat|drum beat)\b")
_HALFTIME_RE = re.compile(r"\bhalf\s?time\b")


@dataclass(frozen=True)
class PromptCues:
    """What the prompt and tags ask for; None/empty means "not said"."""

    text: str
    genre: Genre | None = None
    moods: tuple[Mood, ...] = ()
    title_word: str | None = None
    tempo_bpm: int | None = None
    tempo_shift: float | None = None
    key: tuple[int, str] | None = None
    mode: Mode | None = None
    instruments: tuple[InstrumentWord, ...] = ()
    drums: bool | None = None
    structure: frozenset[str] = frozenset()
    halftime: bool = False

    def as_dict(self) -> dict[str, object]:
        """The recognised words, for the recipe (explains why the plan looks as it does)."""
        return {
            "genre": self.genre.key if self.genre else None,
            "moods": [m.key for m in self.moods],
            "tempo_bpm": self.tempo_bpm,
            "tempo_shift": self.tempo_shift,
            "key": self.key[1] if self.key else None,
            "mode": self.mode,
            "instruments": [w.phrase for w in self.instruments],
            "drums": self.drums,
            "structure": sorted(self.structure),
        }


def normalise_text(text: str) -> str:
    """Lower-case, with punctuation as spaces, so "Lo-Fi," and "lo fi" match alike."""
    text = text.lower().replace("&", " and ").replace("'n'", " n ")
    return re.sub(r"\s+", " ", re.sub(r"[-_/,;:!?()\[\]\"+*]", " ", text)).strip()


def _find(word: str, text: str) -> int:
    match = re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text)
    return match.start() if match else -1


def mentions(phrase: str, text: str) -> bool:
    """Whether normalised ``text`` contains ``phrase`` as whole words."""
    return _find(normalise_text(phrase), text) >= 0


def _claim(text: str, phrases: Iterable[str]) -> list[tuple[int, str]]:
    """Non-overlapping occurrences of ``phrases`` (earlier phrases claim text first)."""
    taken = [False] * len(text)
    found: list[tuple[int, str]] = []
    for phrase in phrases:
        pattern = r"(?<![\w])" + re.escape(phrase) + r"(?![\w])"
        for match in re.finditer(pattern, text):
            span = range(match.start(), match.end())
            if any(taken[i] for i in span):
                continue
            for i in span:
                taken[i] = True
            found.append((match.start(), phrase))
    return sorted(found)


def choose_genre(prompt: str, style_tags: Sequence[str] = ()) -> Genre | None:
    """The genre whose keywords the prompt and tags mention most (tags count double).

    Hints (words typical of a genre but not naming it) count 0.4; ties go to the genre
    mentioned first, then to table order. None when nothing matches.
    """
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
    return chosen


def default_genre(focus: bool) -> Genre:
    """Focus sessions want unobtrusive music; otherwise pop is the least surprising default."""
    return GENRES_BY_KEY["lofi" if focus else "pop"]


def explicit_tempo(text: str) -> int | None:
    """A tempo written as "92 bpm", "tempo 92", "bpm: 92" (clamped to 40-220)."""
    match = _BPM_RE.search(text)
    if match is None:
        return None
    value = float(match.group(1) or match.group(2))
    return max(MIN_TEMPO, min(MAX_TEMPO, round(value)))


def explicit_key(prompt: str) -> tuple[tuple[int, str] | None, Mode | None]:
    """Tonic (pitch class, spelling) and mode named in the prompt, each None if absent."""
    match = _KEY_WITH_MODE_RE.search(prompt)
    if match is not None:
        pc, name = parse_note_name(match.group(1), match.group(2) or "")
        word = match.group(3).lower()
        mode = as_mode({"maj": "major", "min": "minor"}.get(word, word))
        return (pc, name), mode
    bare = _KEY_BARE_RE.search(prompt)
    if bare is not None:
        pc, name = parse_note_name(bare.group(1), bare.group(2) or "")
        return (pc, name), ("minor" if bare.group(3) else None)
    only = _MODE_ONLY_RE.search(normalise_text(prompt))
    if only is not None:
        word = only.group(1)
        return None, as_mode({"maj": "major", "min": "minor"}.get(word, word))
    return None, None


def _drums(text: str) -> bool | None:
    if _NO_DRUMS_RE.search(text):
        return False
    if _DRUM_WORDS_RE.search(text):
        return True
    return None


def _tempo_shift(text: str) -> float | None:
    hits = _claim(text, (w for w, _ in TEMPO_WORDS))
    if not hits:
        return None
    shifts = dict(TEMPO_WORDS)
    return sum(shifts[w] for _, w in hits) / len(hits)


def _moods(text: str) -> tuple[Mood, ...]:
    firsts: list[tuple[int, int, Mood]] = []
    for order, mood in enumerate(MOODS):
        positions = [p for w in mood.words if (p := _find(w, text)) >= 0]
        if positions:
            firsts.append((min(positions), order, mood))
    return tuple(m for _, _, m in sorted(firsts))


def _title_word(text: str, moods: Sequence[Mood]) -> str | None:
    hits = [(pos, label) for word, label in TITLE_WORDS if (pos := _find(word, text)) >= 0]
    if hits:
        return min(hits)[1]
    return moods[0].label if moods else None


def parse_prompt(prompt: str, style_tags: Sequence[str] = ()) -> PromptCues:
    """Recognise genre, moods, tempo, key/mode, instruments, drums and structure words."""
    text = normalise_text(prompt)
    tag_text = normalise_text(" ".join(style_tags))
    both = f"{text} {tag_text}".strip()
    key, mode = explicit_key(prompt)
    if key is None and mode is None and style_tags:
        key, mode = explicit_key(" ".join(style_tags))
    moods = _moods(both)
    instruments = tuple(
        next(w for w in INSTRUMENT_WORDS if w.phrase == phrase)
        for _, phrase in _claim(both, (w.phrase for w in INSTRUMENT_WORDS))
    )
    structure_of = dict(STRUCTURE_WORDS)
    structure = frozenset(structure_of[w] for _, w in _claim(both, structure_of))
    tempo = explicit_tempo(text)
    if tempo is None:
        tempo = explicit_tempo(tag_text)
    return PromptCues(
        text=both,
        genre=choose_genre(prompt, style_tags),
        moods=moods,
        title_word=_title_word(both, moods),
        tempo_bpm=tempo,
        tempo_shift=_tempo_shift(both),
        key=key,
        mode=mode,
        instruments=instruments,
        drums=_drums(both),
        structure=structure,
        halftime=bool(_HALFTIME_RE.search(both)),
    )
