"""Genre profiles: the keywords that select a genre and the musical defaults it implies.

Everything here is data. ``plan.py`` picks a profile and draws from it with the seeded
generator; the part writers interpret the style names (``groove`` in ``grooves.py``,
``bass_style`` in ``bass.py``, ``chord_style`` in ``harmony_comp.py``, ``form`` in
``form.py``). Progressions are Roman numerals relative to the major scale of the tonic
(see ``theory.py``), tagged with the mode they were written for.
"""

from __future__ import annotations

from dataclasses import dataclass

from musicstudio.engines.studio.prompt_words import GM_NAMES, MELODY_CENTER
from musicstudio.engines.studio.theory import Mode

__all__ = ["GENRES", "GENRES_BY_KEY", "GM_NAMES", "MELODY_CENTER", "Genre"]


@dataclass(frozen=True)
class Genre:
    """Defaults for one genre. Tuples of programs are alternatives the seed chooses from."""

    key: str
    label: str
    keywords: tuple[str, ...]
    hints: tuple[str, ...]
    tempo: tuple[int, int]
    modes: tuple[tuple[Mode, float], ...]
    progressions: tuple[tuple[Mode, str], ...]
    chords: tuple[int, ...]
    bass: tuple[int, ...]
    melody: tuple[int, ...]
    groove: str
    bass_style: str
    chord_style: str
    pad: tuple[int, ...] = ()
    drums: bool = True
    kit: int = 0
    melody_density: float = 0.8
    melody_scale: str = "chord"  # chord (chord-scale of the mode) | blues | pentatonic
    swing: float = 0.5  # long/short ratio of swung pairs (0.5 = straight)
    swing_unit: float = 0.25  # beats per swung note (0.25 = 16ths, 0.5 = 8ths)
    form: str = "song"  # song | club | blues | through
    bars_per_chord: int = 1
    voices: int = 3  # notes per chord voicing
    cadence_major: str = "IV V"
    cadence_minor: str = "iv V"
    final_major: str = "I"
    final_minor: str = "i"
    energy: float = 0.6
    room: float = 0.2
    timing_ms: float = 6.0  # humanised timing spread of pitched parts
    # Per-role level overrides (dB relative to the drums), see ``mix.ROLE_LEVEL_DB``.
    mix_levels: tuple[tuple[str, float], ...] = ()

    def progressions_for(self, mode: str) -> tuple[str, ...]:
        """Progressions written for ``mode``, else for its family (major- or minor-like)."""
        exact = tuple(p for m, p in self.progressions if m == mode)
        if exact:
            return exact
        minor = mode in ("minor", "dorian", "phrygian")
        family = ("minor", "dorian", "phrygian") if minor else ("major", "mixolydian", "lydian")
        similar = tuple(p for m, p in self.progressions if m in family)
        return similar or tuple(p for _, p in self.progressions)


_MAJ: Mode = "major"
_MIN: Mode = "minor"
_DOR: Mode = "dorian"
_MIX: Mode = "mixolydian"
_LYD: Mode = "lydian"
_PHR: Mode = "phrygian"

GENRES: tuple[Genre, ...] = (
    Genre(
        key="lofi", label="Lo-fi Hip Hop",
        keywords=("lofi", "lo fi", "chillhop", "lo fi hip hop", "lofi hip hop", "beats to study",
                  "study beats", "jazzhop"),
        hints=("study", "chill", "rainy", "cozy", "nostalgic", "vinyl", "tape"),
        tempo=(70, 90), modes=((_MIN, 0.35), (_DOR, 0.2), (_MAJ, 0.45)),
        progressions=((_MAJ, "IVmaj7 iii7 ii7 Imaj7"), (_MAJ, "ii7 V7 Imaj7 vi7"),
                      (_MAJ, "Imaj7 vi7 ii7 V7"), (_MAJ, "IVmaj7 V7 iii7 vi7"),
                      (_MIN, "i7 iv7 bVIImaj7 bIIImaj7"), (_MIN, "i7 bVImaj7 iv7 v7"),
                      (_DOR, "i7 IV7 i7 IV7"), (_DOR, "ii7 i7 bVIImaj7 i7")),
        chords=(4, 0, 5), bass=(33, 32, 35), melody=(11, 4, 73, 12, 10), pad=(),
        groove="lofi", bass_style="lofi", chord_style="lofi", voices=4,
        melody_density=0.6, swing=0.6, swing_unit=0.25, energy=0.45, room=0.22, timing_ms=12.0,
        cadence_major="ii7 V7", cadence_minor="iv7 v7",
        final_major="Imaj7", final_minor="i7",
    ),
    Genre(
        key="hiphop", label="Hip Hop",
        keywords=("hip hop", "hiphop", "rap", "boom bap", "trap", "beat tape"),
        hints=("groove", "street", "urban", "808", "808s"),
        tempo=(84, 98), modes=((_MIN, 0.75), (_MAJ, 0.25)),
        progressions=((_MIN, "i bVI i bVI"), (_MIN, "i iv bVI v"), (_MIN, "i bVII bVI bVII"),
                      (_MAJ, "vi IV I V"), (_MAJ, "I vi IV V")),
        chords=(4, 0, 48), bass=(38, 33), melody=(10, 11, 73, 0),
        groove="hiphop", bass_style="808", chord_style="halves", voices=4,
        melody_density=0.6, swing=0.56, kit=0, energy=0.6, room=0.15, timing_ms=8.0,
        cadence_minor="iv v",
    ),
    Genre(
        key="ambient", label="Ambient",
        keywords=("ambient", "drone", "atmospheric", "meditation", "soundscape", "new age"),
        hints=("sleep", "calm", "relaxing", "peaceful", "space", "ethereal", "dreamy",
               "floating", "yoga"),
        tempo=(60, 80), modes=((_MAJ, 0.35), (_LYD, 0.2), (_MIN, 0.3), (_DOR, 0.15)),
        progressions=((_MAJ, "Iadd9 IVmaj7 vi7 IVmaj7"), (_MAJ, "Imaj7 iii7 IVmaj7 Imaj7"),
                      (_LYD, "Imaj7 II Imaj7 II"), (_MIN, "i bVImaj7 i bVImaj7"),
                      (_MIN, "i7 bIIImaj7 bVImaj7 iv7"), (_DOR, "i7 IV i7 IV")),
        chords=(89, 88, 94), bass=(35, 43), melody=(8, 10, 94, 11), pad=(91, 95),
        drums=False, groove="soft", bass_style="pedal", chord_style="sustain", voices=4,
        melody_density=0.25, form="through", bars_per_chord=2, energy=0.3, room=0.4,
        cadence_major="IVmaj7", cadence_minor="bVImaj7", final_major="Iadd9", final_minor="i",
        timing_ms=10.0,
        mix_levels=(("chords", -2.0), ("pad", -6.0), ("melody", -3.0), ("bass", -5.0)),
    ),
    Genre(
        key="house", label="House",
        keywords=("house", "deep house", "disco house", "garage", "tech house", "piano house"),
        hints=("club", "dance", "disco", "dancefloor"),
        tempo=(118, 126), modes=((_MIN, 0.5), (_MAJ, 0.3), (_DOR, 0.2)),
        progressions=((_MIN, "i7 bVImaj7 bIIImaj7 bVII"), (_MIN, "i7 iv7 i7 v7"),
                      (_DOR, "i7 IV7 i7 IV7"), (_MAJ, "vi7 IVmaj7 Imaj7 V"),
                      (_MAJ, "ii7 iii7 IVmaj7 V7")),
        chords=(4, 0, 16, 90), bass=(38, 39), melody=(80, 11, 81, 4),
        groove="house", bass_style="offbeat", chord_style="stabs", form="club", voices=4,
        melody_density=0.7, energy=0.75, room=0.18, timing_ms=3.0,
    ),
    Genre(
        key="techno", label="Techno",
        keywords=("techno", "electronic", "edm", "electro", "trance", "rave", "minimal techno",
                  "industrial"),
        hints=("synth", "synths", "club", "dance", "futuristic", "robotic", "warehouse",
               "underground"),
        tempo=(124, 134), modes=((_MIN, 0.6), (_PHR, 0.2), (_DOR, 0.2)),
        progressions=((_MIN, "i i bVI bVII"), (_MIN, "i i iv i"), (_MIN, "i bVII bVI bVII"),
                      (_PHR, "i bII i bII"), (_DOR, "i7 i7 IV IV")),
        chords=(90, 50, 81), bass=(38, 39), melody=(81, 80), pad=(95,),
        groove="techno", bass_style="rolling", chord_style="stabs", form="club", kit=24,
        melody_density=0.45, energy=0.8, room=0.18, timing_ms=2.0,
        cadence_minor="bVI bVII",
    ),
    Genre(
        key="dnb", label="Drum and Bass",
        keywords=("drum and bass", "drum n bass", "drum & bass", "drumnbass", "dnb", "d and b",
                  "jungle", "liquid dnb", "neurofunk", "liquid funk"),
        hints=("breakbeat", "breakbeats", "amen", "rolling", "breaks"),
        tempo=(170, 176), modes=((_MIN, 0.75), (_DOR, 0.25)),
        progressions=((_MIN, "i7 bVImaj7 bIIImaj7 bVII"), (_MIN, "i7 iv7 bVImaj7 v7"),
                      (_MIN, "i bVI bVII i"), (_DOR, "i7 IV7 i7 bVIImaj7")),
        chords=(89, 4, 90), bass=(39, 38), melody=(81, 80, 11), pad=(89, 50),
        groove="dnb", bass_style="reese", chord_style="sustain", form="club", voices=4,
        bars_per_chord=2, melody_density=0.45, energy=0.8, room=0.2, timing_ms=3.0,
        cadence_minor="bVI bVII",
    ),
    Genre(
        key="synthwave", label="Synthwave",
        keywords=("synthwave", "synth wave", "retrowave", "outrun", "darksynth", "80s",
                  "eighties", "vaporwave", "chiptune", "8 bit"),
        hints=("neon", "retro", "night drive", "arcade", "cyberpunk", "vhs"),
        tempo=(84, 112), modes=((_MIN, 0.75), (_MAJ, 0.25)),
        progressions=((_MIN, "i bVI bIII bVII"), (_MIN, "i bVII bVI bVII"),
                      (_MIN, "i iv bVI bVII"), (_MAJ, "vi IV I V"), (_MAJ, "I V vi IV")),
        chords=(90, 50, 88), bass=(38, 39), melody=(81, 80, 62), pad=(89, 90),
        groove="synthwave", bass_style="octaves", chord_style="sustain", kit=24,
        melody_density=0.6, energy=0.65, room=0.3, timing_ms=2.0, cadence_minor="bVI bVII",
    ),
    Genre(
        key="pop", label="Pop",
        keywords=("pop", "synthpop", "indie pop", "dance pop", "k pop", "ballad",
                  "power ballad", "electropop"),
        hints=("happy", "catchy", "summer", "radio", "bright", "upbeat", "sunny"),
        tempo=(96, 124), modes=((_MAJ, 0.7), (_MIN, 0.3)),
        progressions=((_MAJ, "I V vi IV"), (_MAJ, "vi IV I V"), (_MAJ, "I vi IV V"),
                      (_MAJ, "IV I V vi"), (_MIN, "i bVI bIII bVII"), (_MIN, "i bVII bVI bVII"),
                      (_MIN, "i iv bVI bVII")),
        chords=(0, 4, 25), bass=(33, 38), melody=(80, 11, 73, 4), pad=(89, 48),
        groove="pop", bass_style="root_fifth", chord_style="pop_piano",
        melody_density=0.85, energy=0.65, room=0.2, cadence_minor="bVI bVII",
    ),
    Genre(
        key="rock", label="Rock",
        keywords=("rock", "punk", "grunge", "metal", "indie rock", "garage rock", "hard rock",
                  "alt rock", "alternative", "classic rock", "stoner rock"),
        hints=("guitar", "guitars", "anthem", "energetic", "driving", "power chords", "loud"),
        tempo=(104, 140), modes=((_MAJ, 0.5), (_MIN, 0.3), (_MIX, 0.2)),
        progressions=((_MAJ, "I IV V IV"), (_MAJ, "I V vi IV"), (_MAJ, "I IV I V"),
                      (_MIX, "I bVII IV I"), (_MIX, "I bVII IV IV"), (_MIN, "i bVI bVII i"),
                      (_MIN, "i bVII bVI bVII"), (_MIN, "i iv bVI bVII")),
        chords=(29, 30), bass=(34, 33), melody=(29, 27, 30), pad=(),
        groove="rock", bass_style="eighths", chord_style="power", kit=16,
        melody_scale="pentatonic",
        melody_density=0.85, energy=0.8, room=0.15, cadence_minor="bVI bVII",
        cadence_major="IV V",
    ),
    Genre(
        key="jazz", label="Jazz",
        keywords=("jazz", "swing", "bebop", "lounge", "smooth jazz", "big band", "jazz trio",
                  "bossa nova", "hard bop"),
        # Adjectives ("jazzy lofi") colour another genre, so they are only hints.
        hints=("jazzy", "sax", "saxophone", "trumpet", "smoky", "speakeasy", "cafe",
               "late night", "upright bass", "brushes"),
        tempo=(96, 150), modes=((_MAJ, 0.65), (_MIN, 0.35)),
        progressions=((_MAJ, "ii7 V7 Imaj7 Imaj7"), (_MAJ, "Imaj7 vi7 ii7 V7"),
                      (_MAJ, "iii7 vi7 ii7 V7"), (_MAJ, "Imaj7 IV7 iii7 VI7"),
                      (_MIN, "iiø V7 i7 i7"), (_MIN, "i7 iv7 iiø V7")),
        chords=(0, 4, 26), bass=(32,), melody=(66, 65, 56, 11),
        groove="jazz", bass_style="walking", chord_style="comp", kit=32, voices=4,
        melody_density=1.0, swing=0.65, swing_unit=0.5, energy=0.55, room=0.22,
        timing_ms=10.0, cadence_major="ii7 V7", cadence_minor="iiø V7", final_major="Imaj7",
        final_minor="i7",
        mix_levels=(("drums", -3.0), ("chords", -4.0)),
    ),
    Genre(
        key="blues", label="Blues",
        keywords=("blues", "12 bar", "twelve bar", "delta blues", "chicago blues",
                  "blues shuffle"),
        hints=("bluesy", "harmonica", "slide guitar", "whiskey", "juke", "shuffle", "bayou"),
        tempo=(76, 112), modes=((_MAJ, 0.75), (_MIN, 0.25)),
        progressions=((_MAJ, "I7 I7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7"),
                      (_MAJ, "I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7"),
                      (_MIN, "i7 i7 i7 i7 iv7 iv7 i7 i7 bVI7 V7 i7 V7")),
        chords=(0, 16, 27), bass=(33, 32), melody=(29, 22, 66, 27),
        groove="shuffle", bass_style="boogie", chord_style="shuffle", voices=4,
        melody_scale="blues", melody_density=0.75, swing=0.67, swing_unit=0.5, form="blues",
        energy=0.6, room=0.2, timing_ms=10.0, cadence_major="V7", cadence_minor="V7",
        final_major="I7", final_minor="i7",
    ),
    Genre(
        key="classical", label="Solo Piano",
        keywords=("classical", "sonata", "nocturne", "baroque", "etude", "prelude",
                  "solo piano", "piano solo", "classical piano", "chamber", "romantic era",
                  "minuet"),
        hints=("piano", "romantic", "elegant", "gentle", "chopin", "debussy", "satie",
               "lullaby"),
        tempo=(66, 100), modes=((_MAJ, 0.55), (_MIN, 0.45)),
        progressions=((_MAJ, "I IV V I"), (_MAJ, "I vi ii V"), (_MAJ, "I V vi iii IV I ii V"),
                      (_MIN, "i iv V i"), (_MIN, "i bVI iv V"),
                      (_MIN, "i iv bVII bIII bVI iio V i")),
        chords=(0,), bass=(0,), melody=(0,), drums=False,
        groove="soft", bass_style="piano", chord_style="arpeggio", form="through",
        melody_density=0.9, energy=0.45, room=0.3, timing_ms=14.0, cadence_major="ii V7",
        cadence_minor="iio V7",
        mix_levels=(("melody", 0.0), ("chords", -4.0), ("bass", -5.0)),
    ),
    Genre(
        key="cinematic", label="Cinematic",
        keywords=("cinematic", "epic", "film", "movie", "trailer", "orchestral", "orchestra",
                  "soundtrack", "film score", "score", "symphonic"),
        hints=("dramatic", "heroic", "adventure", "battle", "emotional", "strings", "fantasy",
               "timpani"),
        tempo=(70, 100), modes=((_MIN, 0.7), (_MAJ, 0.3)),
        progressions=((_MIN, "i bVI bIII bVII"), (_MIN, "i bVI iv V"), (_MIN, "i bVII bVI V"),
                      (_MAJ, "I V vi IV"), (_MAJ, "I bVI IV V"), (_MAJ, "vi IV I V")),
        chords=(48, 49), bass=(43, 42), melody=(60, 40, 73, 56), pad=(52, 61),
        groove="cinematic", bass_style="pedal", chord_style="ostinato", kit=48, form="through",
        melody_density=0.45, energy=0.65, room=0.35, timing_ms=10.0, cadence_minor="bVI bVII",
        mix_levels=(("chords", -1.0), ("pad", -6.0), ("drums", -2.0)),
    ),
    Genre(
        key="folk", label="Folk",
        keywords=("folk", "singer songwriter", "americana", "country", "bluegrass",
                  "campfire", "indie folk", "celtic", "acoustic folk"),
        hints=("acoustic", "banjo", "fiddle", "rustic", "countryside", "cabin", "mandolin",
               "harmonica", "ukulele", "medieval", "tavern", "bard", "sea shanty", "pirate"),
        tempo=(88, 120), modes=((_MAJ, 0.7), (_MIN, 0.15), (_MIX, 0.15)),
        progressions=((_MAJ, "I IV I V"), (_MAJ, "I V vi IV"), (_MAJ, "vi IV I V"),
                      (_MAJ, "I IV vi V"), (_MIX, "I bVII IV I"), (_MIN, "i bVII bVI bVII"),
                      (_MIN, "i bIII bVII i")),
        chords=(25, 24), bass=(32, 33), melody=(73, 110, 22, 105, 40),
        groove="folk", bass_style="alternating", chord_style="strum", kit=40,
        melody_scale="pentatonic",
        melody_density=0.75, energy=0.5, room=0.2, timing_ms=9.0, cadence_minor="bVI bVII",
    ),
    Genre(
        key="funk", label="Funk",
        keywords=("funk", "slap bass", "p funk", "jazz funk", "disco funk"),
        hints=("funky", "groove", "slap", "wah", "clavinet", "70s", "seventies", "brass", "groovy"),
        tempo=(96, 114), modes=((_DOR, 0.5), (_MIX, 0.35), (_MIN, 0.15)),
        progressions=((_DOR, "i7 IV7 i7 IV7"), (_DOR, "i7 i7 IV7 IV7"),
                      (_MIX, "I7 IV7 I7 IV7"), (_MIX, "I7 I7 bVII I7"), (_MIN, "i7 bVII i7 iv7")),
        chords=(28, 7, 27), bass=(36, 37, 33), melody=(61, 66, 56, 81), pad=(61,),
        groove="funk", bass_style="funk", chord_style="funk", voices=3,
        melody_density=0.8, swing=0.54, energy=0.75, room=0.12, timing_ms=4.0,
        cadence_major="IV7 V7", cadence_minor="iv7 V7", final_major="I7", final_minor="i7",
    ),
)  # fmt: skip

GENRES_BY_KEY: dict[str, Genre] = {g.key: g for g in GENRES}
