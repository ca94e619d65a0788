"""The drum part: the genre's groove bar by bar, shaped by the sections, with fills.

Intros keep only the timekeepers (club intros keep the kick for the DJ), breakdowns drop
kick and backbeat, builds roll the snare faster and louder into the drop, choruses and
drops open with a crash, section ends get a fill. Focus music has soft edges: nothing but
quiet timekeeping in the first and last bars of a segment, never a crash.
"""

from __future__ import annotations

from musicstudio.engines.studio.grooves import (
    BACKBEATS,
    CLOSED,
    CRASH,
    CRASH_STYLES,
    FILL_STYLE,
    FILLS,
    KICK,
    KICK2,
    KICKS,
    RIDE,
    SNARE,
    TIMEKEEPERS,
    Fill,
    velocity_of,
)
from musicstudio.engines.studio.harmony import Bar, Context
from musicstudio.engines.studio.humanise import NoteEvent, Performer
from musicstudio.engines.studio.plan import Part

# How long each sound is held before note-off (cymbals ring, skins are short).
_HOLD_SECONDS = {CRASH: 2.0, 57: 2.0, RIDE: 0.9, 46: 0.4}
# A lazy backbeat (ms behind the grid) is much of what makes lo-fi and boom bap feel loose.
_LAG_MS = {"lofi": 14.0, "hiphop": 7.0, "jazz": 4.0}
_CLUB = frozenset({"house", "techno", "dnb"})


def _lanes_for(ctx: Context, bar: Bar) -> list[tuple[int, str]]:
    groove = ctx.groove
    offset = (bar.index % (groove.steps // 16)) * 16
    return [(key, lane[offset : offset + 16]) for key, lane in groove.lanes]


def _keys_allowed(ctx: Context, bar: Bar, edge: bool) -> frozenset[int] | None:
    """Keys this bar may play (None = all)."""
    name = bar.section.name
    style = ctx.plan.genre.groove
    if edge:
        return TIMEKEEPERS
    if name == "intro":
        return TIMEKEEPERS | KICKS if style in _CLUB and bar.position >= 1 else TIMEKEEPERS
    if name == "breakdown":
        return TIMEKEEPERS
    if name == "outro" and bar.position >= bar.section.bars - 2:
        return TIMEKEEPERS | KICKS if style in _CLUB else TIMEKEEPERS
    if name == "build":
        return TIMEKEEPERS | KICKS
    return None


def _is_edge(ctx: Context, bar: Bar) -> bool:
    """A focus segment's first or last bar (or the piece's): keep it soft."""
    if not ctx.plan.focus:
        return False
    bars = ctx.bars
    first = bar.index == 0 or bars[bar.index - 1].section.segment != bar.section.segment
    following = bars[bar.index + 1] if bar.index + 1 < len(bars) else None
    last = following is None or following.is_end or following.section.segment != bar.section.segment
    return first or last


def _fill_for(
    ctx: Context, bar: Bar, fills: tuple[Fill, ...], pick: float
) -> tuple[Fill, int] | None:
    """The fill for this bar and its first step, or None."""
    if not fills or ctx.plan.focus or bar.section.energy < 0.4:
        return None
    name = bar.section.name
    if name in ("build", "breakdown"):
        return None
    big = bar.is_section_end and bar.section.bars >= 2 and bar.next_section not in ("outro",)
    small = bar.position % 8 == 7 and not bar.is_section_end
    if not (big or small) or (name == "intro" and not bar.is_section_end):
        return None
    start = 8 if big and bar.next_section in ("chorus", "drop", "end") else 12
    return fills[int(pick * len(fills)) % len(fills)], start


def _hit(player: Performer, ctx: Context, beat: float, key: int, velocity: float, lag: float
         ) -> None:  # fmt: skip
    hold = _HOLD_SECONDS.get(key, 0.15) / ctx.beat_seconds
    player.play(beat, hold, key, velocity, lag_ms=lag)


def write_drums(ctx: Context, part: Part) -> list[NoteEvent]:
    """The drum part for the whole piece."""
    plan = ctx.plan
    style = plan.genre.groove
    rng = ctx.rng("drums")
    player = ctx.performer(part, timing_ms=2.5, spread=7.0)
    fills = FILLS.get(FILL_STYLE.get(style, ""), ())
    lazy = _LAG_MS.get(style, 0.0)
    kick = KICK2 if any(k == KICK2 for k, _ in ctx.groove.lanes) else KICK
    for bar in ctx.bars:
        dyn = ctx.dynamics(bar)
        pick = rng.random()
        if bar.is_end:
            if not plan.focus and style != "soft":
                _hit(player, ctx, bar.start, kick, 108 * dyn, 0.0)
                cymbal = CRASH if style in CRASH_STYLES else RIDE
                _hit(player, ctx, bar.start, cymbal, 96 * dyn, 0.0)
            continue
        edge = _is_edge(ctx, bar)
        if edge and (bar.index == 0 or (bar.position == 0 and bar.section.name == "intro")):
            continue  # a segment fades in from harmony alone
        allowed = _keys_allowed(ctx, bar, edge)
        fill = _fill_for(ctx, bar, fills, pick)
        chorus_like = bar.section.name in ("chorus", "drop") and bar.section.energy >= 0.85
        for key, lane in _lanes_for(ctx, bar):
            if allowed is not None and key not in allowed:
                continue
            # Big choruses ride the cymbal instead of the closed hat, as drummers do.
            played = RIDE if chorus_like and key == CLOSED and style == "rock" else key
            for step, ch in enumerate(lane):
                if ch == "." or (fill and step >= fill[1] and key not in fill[0].keep):
                    continue
                lag = lazy if key in BACKBEATS else 0.0
                scale = 0.6 if edge else 1.0
                _hit(player, ctx, bar.start + step * 0.25, played, velocity_of(ch) * dyn * scale,
                     lag)  # fmt: skip
        if fill is not None:
            for key, lane in fill[0].lanes:
                for i, ch in enumerate(lane):
                    if ch != "." and 8 + i >= fill[1]:
                        _hit(player, ctx, bar.start + (8 + i) * 0.25, key,
                             velocity_of(ch) * dyn, 0.0)  # fmt: skip
        if bar.section.name == "build":
            _roll(player, ctx, bar, dyn)
        opens = bar.position == 0 and bar.index > 0
        if opens and not plan.focus and style in CRASH_STYLES and bar.section.name in (
            "chorus", "drop", "verse", "bridge"
        ):  # fmt: skip
            previous = ctx.bars[bar.index - 1].section.name
            if bar.section.name != "verse" or previous in ("chorus", "intro", "drop"):
                _hit(player, ctx, bar.start, CRASH, 100 * dyn, 0.0)
    return player.events


def _roll(player: Performer, ctx: Context, bar: Bar, dyn: float) -> None:
    """A snare roll that doubles its speed and swells over the build."""
    bars = bar.section.bars
    left = bars - bar.position
    step = 1.0 if left > 2 else (0.5 if left == 2 else 0.25)
    progress = bar.position / max(1, bars)
    t = 0.0
    while t < 4.0 - 1e-9:
        swell = progress + (t / 4.0) / max(1, bars)
        _hit(player, ctx, bar.start + t, SNARE, (50 + 65 * swell) * dyn, 0.0)
        t += step
