"""Drum grooves and fills per genre, as step grids (General MIDI percussion keys).

One character per 16th note: ``X`` accent, ``x`` strong, ``o`` normal, ``g`` ghost, ``.``
rest. A groove of 32 steps spans two bars. Swing is applied later when steps become
seconds, so a straight grid here becomes a shuffle in jazz or blues. Fills cover the second
half of a bar (8 steps); the drum writer uses all of it before a big change and only the
last 4 steps elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

KICK, KICK2, SIDE, SNARE, CLAP = 36, 35, 37, 38, 39
CLOSED, PEDAL, OPEN, RIDE, CRASH = 42, 44, 46, 51, 49
TOM_LOW, TOM_MID, TOM_HIGH, FLOOR = 45, 47, 50, 41
TAMB, SHAKER, MARACAS = 54, 70, 69

STEP_VELOCITY = {"X": 122, "x": 104, "o": 84, "g": 46}
# Sounds that keep time without weight: the only ones an intro or a soft edge keeps.
TIMEKEEPERS = frozenset({CLOSED, PEDAL, OPEN, RIDE, SHAKER, MARACAS, TAMB})
KICKS = frozenset({KICK, KICK2})
BACKBEATS = frozenset({SNARE, CLAP, SIDE})


@dataclass(frozen=True)
class Groove:
    """One drum pattern: (key, step string) lanes of equal length (16 or 32 steps)."""

    name: str
    lanes: tuple[tuple[int, str], ...]
    halftime: bool = False

    @property
    def steps(self) -> int:
        """Steps in the pattern (16 = one bar)."""
        return len(self.lanes[0][1])

    def kick_steps(self, bar: int) -> tuple[int, ...]:
        """The 16th steps of ``bar`` (0-15) where this groove plays a kick."""
        offset = (bar % (self.steps // 16)) * 16
        return tuple(
            s - offset
            for key, lane in self.lanes
            if key in KICKS
            for s, ch in enumerate(lane)
            if ch != "." and offset <= s < offset + 16
        )


@dataclass(frozen=True)
class Fill:
    """A fill over steps 8-15: lanes of 8 characters, plus groove keys it plays over."""

    lanes: tuple[tuple[int, str], ...]
    keep: frozenset[int] = frozenset()


def _g(name: str, *lanes: tuple[int, str], halftime: bool = False) -> Groove:
    return Groove(name, tuple(lanes), halftime)


FOUR = "x...x...x...x..."

GROOVES: dict[str, tuple[Groove, ...]] = {
    "pop": (
        _g("pop", (KICK, "x.......x.x....."), (SNARE, "....x.......x..."),
           (CLOSED, "o.o.o.o.o.o.o.o.")),
        _g("pop-push", (KICK, "x.....o.x......."), (SNARE, "....x.......x..."),
           (CLOSED, "o.ooo.ooo.ooo.oo")),
        _g("pop-clap", (KICK, "x..o....x.o....."), (CLAP, "....x.......x..."),
           (CLOSED, "ogogogogogogogog")),
    ),
    "rock": (
        _g("rock", (KICK, "x.......x.x....."), (SNARE, "....X.......X..."),
           (CLOSED, "x.o.x.o.x.o.x.o.")),
        _g("rock-drive", (KICK, "x.x.....x.x....."), (SNARE, "....X.......X..."),
           (CLOSED, "x.o.x.o.x.o.x.o.")),
        _g("rock-eighths", (KICK, "x......ox.x....."), (SNARE, "....X.......X..g"),
           (CLOSED, "xoxoxoxoxoxoxoxo")),
    ),
    "house": (
        _g("house", (KICK, FOUR), (CLAP, "....x.......x..."), (OPEN, "..o...o...o...o."),
           (SHAKER, "g.gg.gg.g.gg.gg.")),
        _g("house-hats", (KICK, FOUR), (CLAP, "....x.......x..."), (CLOSED, "g.x.g.x.g.x.g.x.")),
        _g("house-piano", (KICK, FOUR), (SNARE, "....x.......x..."), (CLOSED, "..x...x...x...x."),
           (TAMB, "....o.......o...")),
    ),
    "techno": (
        _g("techno", (KICK, FOUR), (CLOSED, "gg.ggg.ggg.ggg.g"), (OPEN, "..o...o...o...o."),
           (SIDE, "......g.....g..g")),
        _g("techno-clap", (KICK, FOUR), (CLAP, "....o.......o..."), (CLOSED, "x.x.x.x.x.x.x.x."),
           (SIDE, "...g..g....g..g.")),
    ),
    "dnb": (
        _g("two-step", (KICK, "x.........x....."), (SNARE, "....X.......X..."),
           (CLOSED, "o.o.o.o.o.o.o.o.")),
        _g("break", (KICK, "x.........x.....x.x.......x....."),
           (SNARE, "....X..g.g..X.......X..g....X..g"),
           (CLOSED, "o.o.o.o.o.o.o.o.o.o.o.o.o.o.o.o.")),
        _g("ride-step", (KICK, "x.........x....."), (SNARE, "....X.......X..."),
           (RIDE, "o.o.o.o.o.o.o.o.")),
    ),
    "synthwave": (
        _g("synthwave", (KICK, FOUR), (SNARE, "....X.......X..."), (CLAP, "....x.......x..."),
           (CLOSED, "o.o.o.o.o.o.o.o.")),
        _g("synthwave-rock", (KICK, "x.......x.x....."), (SNARE, "....X.......X..."),
           (CLAP, "....x.......x..."), (CLOSED, "ogogogogogogogog")),
    ),
    "lofi": (
        _g("boom-bap", (KICK, "x......x..x....."), (SNARE, "....x.......x..."),
           (CLOSED, "o.g.o.g.o.g.o.gg")),
        _g("lazy", (KICK, "x.........x..o.."), (SNARE, "....x.......x..g"),
           (CLOSED, "o.o.o.o.o.o.o.o.")),
        _g("half-time", (KICK, "x.......x..o...."), (SNARE, "........x......."),
           (SIDE, "....g.......g..."), (CLOSED, "o.o.o.o.o.o.o.o."), halftime=True),
    ),
    "hiphop": (
        _g("boom-bap", (KICK, "x......x.xx....."), (SNARE, "....X.......X..."),
           (CLOSED, "x.o.x.o.x.o.x.o.")),
        _g("boom-bap-2", (KICK, "x..o......x....."), (SNARE, "....X.......X..."),
           (CLOSED, "o.g.o.g.o.g.o.g.")),
        _g("trap", (KICK2, "x......x..x....."), (CLAP, "........X......."),
           (CLOSED, "ogogogogooogogog"), halftime=True),
    ),
    "jazz": (
        _g("spang-a-lang", (RIDE, "o...x.g.o...x.g."), (PEDAL, "....o.......o..."),
           (KICK, "g...g...g...g...")),
        _g("ride-comp", (RIDE, "o...x.g.o...x.g."), (PEDAL, "....o.......o..."),
           (SNARE, "..........g....g")),
    ),
    "shuffle": (
        _g("shuffle", (KICK, "x.......x......."), (SNARE, "....x.......x..."),
           (CLOSED, "x.o.x.o.x.o.x.o.")),
        _g("shuffle-ride", (KICK, "x.....o.x......."), (SNARE, "....x.......x..."),
           (RIDE, "x.o.x.o.x.o.x.o.")),
    ),
    "funk": (
        _g("funk", (KICK, "x.....x...x..x.."), (SNARE, "....X..g.g..X..g"),
           (CLOSED, "xgxgxgxgxgxgxg.g"), (OPEN, "..............o.")),
        _g("funk-2", (KICK, "x..x..x...x....."), (SNARE, "....X.g.....X.g."),
           (CLOSED, "xgxgxgxgxgxgxgxg")),
        _g("funk-3", (KICK, "x.x...x...x....."), (SNARE, "....X..g.g.gX..."),
           (CLOSED, "x.x.x.x.x.x.x.o.")),
    ),
    "folk": (
        _g("folk", (KICK, "x.......x......."), (SIDE, "....x.......x..."),
           (TAMB, "..o...o...o...o.")),
        _g("folk-train", (KICK, "x.....x.x......."), (SNARE, "....o.......o..."),
           (CLOSED, "o.o.o.o.o.o.o.o.")),
    ),
    "cinematic": (
        _g("timpani", (KICK2, "x.......o......."), (TOM_LOW, "......o.....o.o."),
           (FLOOR, "o.........o.....")),
        _g("taiko", (FLOOR, "x..x..x.x..x..x."), (KICK2, "x.......x......."),
           (SNARE, "....o.......o...")),
    ),
    "soft": (
        _g("soft", (KICK, "o.......o......."), (SHAKER, "g.g.g.g.g.g.g.g."),
           (SIDE, "....g.......g...")),
    ),
}  # fmt: skip


def _f(*lanes: tuple[int, str], keep: tuple[int, ...] = ()) -> Fill:
    return Fill(tuple(lanes), frozenset(keep))


FILLS: dict[str, tuple[Fill, ...]] = {
    "toms": (
        _f((SNARE, "x.x....."), (TOM_HIGH, "....x..."), (TOM_MID, ".....x.."),
           (TOM_LOW, "......x."), (FLOOR, ".......x")),
        _f((SNARE, "ggooxxXX")),
        _f((SNARE, "x..x...."), (TOM_HIGH, "......x."), (TOM_LOW, ".......x"), keep=(KICK,)),
    ),
    "club": (
        _f((CLAP, "..o.oxxX"), keep=(KICK,)),
        _f((SNARE, "gogoxoxX"), keep=(KICK,)),
    ),
    "dnb": (
        _f((SNARE, "xgxgxxXX")),
        _f((SNARE, "x.gxg.xX"), (KICK, "..x....."), (CLOSED, "o.o.o.o.")),
    ),
    "stop": (
        _f((CLOSED, "o.o.o.gg"), (SNARE, ".......o")),
        _f((KICK, "x....x.."), (SNARE, "....o..g")),
    ),
    "jazz": (
        _f((SNARE, "..o..o.x"), (KICK, ".......x"), keep=(RIDE, PEDAL)),
        _f((SNARE, "o..go.ox"), keep=(RIDE, PEDAL)),
    ),
    "funk": (
        _f((SNARE, "gxgxgoxX"), (OPEN, "......o.")),
        _f((SNARE, "xg.gx.gX"), (KICK, "..x..x..")),
    ),
    "shuffle": (
        _f((SNARE, "o.o.x.xX")),
        _f((SNARE, "x...x.x."), (TOM_LOW, ".......x")),
    ),
    "cinematic": (
        _f((FLOOR, "x.x.xxxx"), (TOM_LOW, "....x.x.")),
        _f((SNARE, "gggoooxX"), keep=(KICK2,)),
    ),
}  # fmt: skip

# Which fill family each groove style uses (styles not listed play no fills).
FILL_STYLE: dict[str, str] = {
    "pop": "toms",
    "rock": "toms",
    "synthwave": "toms",
    "folk": "toms",
    "house": "club",
    "techno": "club",
    "dnb": "dnb",
    "lofi": "stop",
    "hiphop": "stop",
    "jazz": "jazz",
    "funk": "funk",
    "shuffle": "shuffle",
    "cinematic": "cinematic",
}
# Styles whose drummer marks the start of a chorus/drop with a crash.
CRASH_STYLES = frozenset(
    {"pop", "rock", "synthwave", "house", "techno", "dnb", "funk", "cinematic", "hiphop", "folk"}
)


def grooves_for(style: str) -> tuple[Groove, ...]:
    """The groove variants of a style (pop's when the style is unknown)."""
    return GROOVES.get(style, GROOVES["pop"])


def velocity_of(step: str) -> int:
    """MIDI velocity for one step character."""
    return STEP_VELOCITY.get(step, 0)
