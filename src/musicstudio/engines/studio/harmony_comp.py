"""The chord part (comping in the genre's style) and the pad.

Every style keeps voice leading (each chord voiced near the previous one) and reacts to
the section: quieter and plainer in intros, verses and breakdowns, fuller in choruses and
drops. The end bar strikes the final chord once and lets it ring to the end of the piece.
"""

from __future__ import annotations

from collections.abc import Callable

from musicstudio.engines.studio.harmony import Bar, Context
from musicstudio.engines.studio.humanise import NoteEvent, Performer
from musicstudio.engines.studio.plan import Part
from musicstudio.engines.studio.theory import Chord, fold_into

# (offset in beats, length in beats, relative velocity) hit patterns.
Hits = tuple[tuple[float, float, float], ...]
_POP_PATTERNS: tuple[Hits, ...] = (
    ((0, 1.5, 1.0), (1.5, 1.0, 0.8), (2.5, 1.5, 0.85)),
    ((0, 1, 1.0), (1, 1, 0.7), (2, 1, 0.85), (3, 1, 0.7)),
    ((0, 2, 1.0), (2, 1.5, 0.85), (3.5, 0.5, 0.7)),
)
_STAB_PATTERNS: dict[str, tuple[Hits, ...]] = {
    "house": (
        ((0.5, 0.35, 1.0), (1.5, 0.35, 0.9), (2.5, 0.35, 1.0), (3.5, 0.35, 0.9)),
        ((0, 0.4, 1.0), (0.75, 0.4, 0.85), (1.5, 0.4, 0.9), (2.5, 0.4, 1.0), (3.25, 0.4, 0.85)),
    ),
    "techno": (((0.75, 0.25, 1.0), (2.5, 0.25, 0.85)), ((1.5, 0.3, 1.0), (3.75, 0.2, 0.8))),
}
_JAZZ_COMPS: tuple[Hits, ...] = (
    ((0, 0.9, 1.0), (1.5, 0.45, 0.85)),
    ((0.5, 0.4, 0.9), (2, 0.9, 1.0)),
    ((1, 0.9, 0.95), (2.5, 0.45, 0.85)),
    ((0, 0.45, 1.0), (2.5, 1.2, 0.9)),
    ((1.5, 0.45, 0.9), (3, 0.9, 0.95)),
)
_FUNK_STEPS: tuple[str, ...] = ("x..x..x.x.x..x.x", "x.gxg.x.gxx.g.x.", ".x.x.xx..x.x.xx.")
_STRUM_FULL = ((0, "D", 1.0), (1, "D", 0.85), (1.5, "U", 0.6), (2.5, "U", 0.6), (3, "D", 0.8),
               (3.5, "U", 0.6))  # fmt: skip
_STRUM_CALM = ((0, "D", 1.0), (2, "D", 0.8))
_OSTINATO = (0, 0.75, 1.5, 2, 2.75, 3.5)


class _Comper:
    """Writes one harmonic part, bar by bar, keeping its last voicing for voice leading."""

    def __init__(self, ctx: Context, part: Part, size: int, center: int) -> None:
        self.ctx = ctx
        self.part = part
        self.size = size
        self.center = center
        self.player: Performer = ctx.performer(part, spread=5.0)
        self.previous: tuple[int, ...] | None = None
        self.rng = ctx.rng(f"comp/{part.role}")

    def voice(self, chord: Chord) -> tuple[int, ...]:
        """The next voicing of ``chord``, led from the previous one."""
        self.previous = self.ctx.voicing(chord, self.center, self.previous, self.size)
        return self.previous

    def hits(
        self, bar: Bar, hits: Hits, velocity: float, spread_ms: float = 4.0, steady: bool = False
    ) -> None:
        """Play the bar's chords on a rhythm of (offset, length, accent) hits; ``steady``
        hits repeat at the same level (the accents still shape them)."""
        for offset, length, accent in hits:
            if offset >= bar.length:
                continue
            voicing = self.voice(bar.chord_at(offset))
            length = min(length, bar.length - offset)
            self.player.chord(
                bar.start + offset,
                length,
                voicing,
                velocity * accent,
                spread_ms=spread_ms,
                steady=steady,
            )

    def held(self, bar: Bar, velocity: float, spread_ms: float = 0.0) -> None:
        """Each chord change held until the next one (or the end of the bar), at the
        section's level: velocity jitter on sustained chords is inaudible but would make
        every held note a different sound to render."""
        for i, (offset, chord) in enumerate(bar.changes):
            until = bar.changes[i + 1][0] if i + 1 < len(bar.changes) else bar.length
            voicing = self.voice(chord)
            self.player.chord(
                bar.start + offset, until - offset - 0.05, voicing, velocity, spread_ms=spread_ms,
                exact=bar.is_end, steady=True,
            )  # fmt: skip


def _pop_piano(c: _Comper, bar: Bar, vel: float) -> None:
    if bar.section.energy < 0.6:
        c.hits(bar, ((0, 2, 1.0), (2, 2, 0.85)), vel)
    else:
        # One rhythm per section (a player settles into a pattern), chosen by the seed.
        index = (c.ctx.plan.seed + bar.section.start_bar) % len(_POP_PATTERNS)
        c.hits(bar, _POP_PATTERNS[index], vel)


def _stabs(c: _Comper, bar: Bar, vel: float) -> None:
    patterns = _STAB_PATTERNS["techno" if c.ctx.plan.genre.key == "techno" else "house"]
    if bar.section.name in ("intro", "breakdown"):
        c.held(bar, vel * 0.8)
        return
    c.hits(bar, patterns[(bar.index // 8 + c.ctx.plan.seed) % len(patterns)], vel, 0.0)


def _lofi(c: _Comper, bar: Bar, vel: float) -> None:
    hits: Hits = ((0, 2.4, 1.0), (2.5, 1.4, 0.8))
    if c.rng.random() < 0.3:
        hits = ((0, 3.4, 1.0), (3.5, 0.5, 0.7))
    c.hits(bar, hits, vel, spread_ms=18.0)


def _comp(c: _Comper, bar: Bar, vel: float) -> None:
    c.hits(bar, _JAZZ_COMPS[c.rng.randrange(len(_JAZZ_COMPS))], vel, spread_ms=6.0)


def _power(c: _Comper, bar: Bar, vel: float) -> None:
    def power(chord: Chord) -> tuple[int, ...]:
        """Root, fifth and octave low on the guitar."""
        root = fold_into(c.ctx.plan.key_root + chord.root, 40, 51)
        return (root, root + 7, root + 12)

    if bar.section.name in ("intro", "breakdown") or bar.section.energy < 0.45:
        c.player.chord(bar.start, min(4.0, bar.length) - 0.1, power(bar.chord), vel)
        return
    muted = bar.section.energy < 0.75  # verses palm-muted, choruses open
    for i in range(8):
        offset = i * 0.5
        accent = 1.0 if i % 2 == 0 else 0.8
        length = 0.22 if muted else 0.45
        c.player.chord(bar.start + offset, length, power(bar.chord_at(offset)), vel * accent,
                       spread_ms=3.0)  # fmt: skip


def _arpeggio(c: _Comper, bar: Bar, vel: float) -> None:
    step = 0.5 if bar.section.energy >= 0.5 else 1.0
    t = 0.0
    while t < min(4.0, bar.length) - 1e-9:
        voicing = c.voice(bar.chord_at(t))
        low, mid, high = voicing[0], voicing[len(voicing) // 2], voicing[-1]
        # Alberti order (low, high, middle, high) keeps the top voice ringing.
        pattern = (low, high, mid, high)
        key = pattern[int(t / step) % 4]
        # A pianist leans on the beats (the downbeat most) and lets the off-beats recede.
        accent = 1.0 if t == 0 else (0.88 if t % 1 == 0 else 0.66)
        c.player.play(bar.start + t, step * 1.6, key, vel * accent)
        t += step


def _ostinato(c: _Comper, bar: Bar, vel: float) -> None:
    if bar.section.energy < 0.7:
        c.held(bar, vel)
        return
    for offset in _OSTINATO:
        voicing = c.voice(bar.chord_at(offset))
        accent = 1.0 if offset in (0, 1.5, 2.75) else 0.78
        # A mechanical figure: its accents carry it, not random velocity.
        c.player.chord(bar.start + offset, 0.3, voicing, vel * accent, steady=True)


def _strum(c: _Comper, bar: Bar, vel: float) -> None:
    pattern = _STRUM_FULL if bar.section.energy >= 0.6 else _STRUM_CALM
    for offset, direction, accent in pattern:
        chord = bar.chord_at(offset)
        voicing = c.voice(chord)
        bass = fold_into(c.ctx.plan.key_root + chord.root, 40, 51)
        strings = (bass, *voicing) if direction == "D" else voicing[-3:]
        c.player.chord(bar.start + offset, 1.0 if direction == "D" else 0.5, strings,
                       vel * accent, spread_ms=9.0, downward=direction == "U")  # fmt: skip


def _funk(c: _Comper, bar: Bar, vel: float) -> None:
    steps = _FUNK_STEPS[(c.ctx.plan.seed + bar.section.start_bar) % len(_FUNK_STEPS)]
    for step, ch in enumerate(steps):
        if ch == ".":
            continue
        offset = step * 0.25
        voicing = c.voice(bar.chord_at(offset))
        ghost = ch == "g"
        c.player.chord(bar.start + offset, 0.08 if ghost else 0.15, voicing,
                       vel * (0.45 if ghost else 1.0), spread_ms=4.0)  # fmt: skip


def _shuffle(c: _Comper, bar: Bar, vel: float) -> None:
    if 16 <= c.part.program <= 23:  # organ: sustained, re-struck each bar
        c.held(bar, vel * 0.85)
        return
    c.hits(bar, ((0, 1, 1.0), (1.5, 0.5, 0.8), (2, 1, 0.9), (3.5, 0.5, 0.8)), vel, 5.0)


_STYLES: dict[str, Callable[[_Comper, Bar, float], None]] = {
    "pop_piano": _pop_piano,
    # Hip hop's chords are a sampled loop: every hit the same, only the accent moves.
    "halves": lambda c, bar, vel: c.hits(bar, ((0, 1.9, 1.0), (2, 1.9, 0.88)), vel, steady=True),
    "sustain": lambda c, bar, vel: c.held(bar, vel),
    "stabs": _stabs,
    "lofi": _lofi,
    "comp": _comp,
    "power": _power,
    "arpeggio": _arpeggio,
    "ostinato": _ostinato,
    "strum": _strum,
    "funk": _funk,
    "shuffle": _shuffle,
}


def write_chords(ctx: Context, part: Part) -> list[NoteEvent]:
    """The chord part in the genre's comping style."""
    genre = ctx.plan.genre
    style = genre.chord_style
    center = {"arpeggio": 55, "funk": 67, "comp": 58}.get(style, 60)
    comper = _Comper(ctx, part, genre.voices, center)
    write = _STYLES.get(style, _STYLES["sustain"])
    for bar in ctx.bars:
        # Section dynamics ride the part's level instead of its velocity, so the same chord
        # is the same note to render in every section (see ``notecache``).
        ctx.ride(part, bar, ctx.dynamics(bar))
        velocity = 82.0
        if bar.is_end:
            spread = 0.0 if style in ("sustain", "stabs", "ostinato") else 25.0
            comper.held(bar, velocity * 0.9, spread_ms=spread)
            continue
        if bar.section.name == "breakdown":
            comper.held(bar, velocity * 0.85)
            continue
        write(comper, bar, velocity)
    return comper.player.events


def write_pad(ctx: Context, part: Part) -> list[NoteEvent]:
    """Soft sustained chords under everything, swelling with the sections (a level ride)."""
    comper = _Comper(ctx, part, 4, 55)
    for bar in ctx.bars:
        song = ctx.plan.genre.form in ("song", "blues")
        if song and bar.section.name == "verse" and not ctx.plan.focus:
            comper.previous = None
            continue  # let the verse breathe; the pad returns for the chorus
        ctx.ride(part, bar, ctx.dynamics(bar))
        comper.held(bar, 66.0)
    return comper.player.events
