"""Vocabulary the prompt parser understands: General MIDI names, instruments, kits and moods.

Everything here is data; ``prompt.py`` does the matching. Words are matched on the
normalised prompt (lower case, hyphens and underscores as spaces), longest phrase first.
"""

from __future__ import annotations

from dataclasses import dataclass

# The 128 General MIDI melodic programs (0-based), in order.
_GM = (
    "Acoustic Grand Piano|Bright Acoustic Piano|Electric Grand Piano|Honky-tonk Piano|"
    "Electric Piano 1|Electric Piano 2|Harpsichord|Clavinet|Celesta|Glockenspiel|Music Box|"
    "Vibraphone|Marimba|Xylophone|Tubular Bells|Dulcimer|Drawbar Organ|Percussive Organ|"
    "Rock Organ|Church Organ|Reed Organ|Accordion|Harmonica|Tango Accordion|"
    "Acoustic Guitar (nylon)|Acoustic Guitar (steel)|Electric Guitar (jazz)|"
    "Electric Guitar (clean)|Electric Guitar (muted)|Overdriven Guitar|Distortion Guitar|"
    "Guitar Harmonics|Acoustic Bass|Electric Bass (finger)|Electric Bass (pick)|Fretless Bass|"
    "Slap Bass 1|Slap Bass 2|Synth Bass 1|Synth Bass 2|Violin|Viola|Cello|Contrabass|"
    "Tremolo Strings|Pizzicato Strings|Orchestral Harp|Timpani|String Ensemble 1|"
    "String Ensemble 2|Synth Strings 1|Synth Strings 2|Choir Aahs|Voice Oohs|Synth Voice|"
    "Orchestra Hit|Trumpet|Trombone|Tuba|Muted Trumpet|French Horn|Brass Section|"
    "Synth Brass 1|Synth Brass 2|Soprano Sax|Alto Sax|Tenor Sax|Baritone Sax|Oboe|"
    "English Horn|Bassoon|Clarinet|Piccolo|Flute|Recorder|Pan Flute|Blown Bottle|Shakuhachi|"
    "Whistle|Ocarina|Lead 1 (square)|Lead 2 (sawtooth)|Lead 3 (calliope)|Lead 4 (chiff)|"
    "Lead 5 (charang)|Lead 6 (voice)|Lead 7 (fifths)|Lead 8 (bass + lead)|Pad 1 (new age)|"
    "Pad 2 (warm)|Pad 3 (polysynth)|Pad 4 (choir)|Pad 5 (bowed)|Pad 6 (metallic)|Pad 7 (halo)|"
    "Pad 8 (sweep)|FX 1 (rain)|FX 2 (soundtrack)|FX 3 (crystal)|FX 4 (atmosphere)|"
    "FX 5 (brightness)|FX 6 (goblins)|FX 7 (echoes)|FX 8 (sci-fi)|Sitar|Banjo|Shamisen|Koto|"
    "Kalimba|Bagpipe|Fiddle|Shanai|Tinkle Bell|Agogo|Steel Drums|Woodblock|Taiko Drum|"
    "Melodic Tom|Synth Drum|Reverse Cymbal|Guitar Fret Noise|Breath Noise|Seashore|Bird Tweet|"
    "Telephone Ring|Helicopter|Applause|Gunshot"
)
GM_NAMES: dict[int, str] = dict(enumerate(_GM.split("|")))

# General MIDI drum kits (programs on the percussion channel, GS numbering).
KIT_NAMES: dict[int, str] = {
    0: "Standard Drum Kit",
    8: "Room Drum Kit",
    16: "Power Drum Kit",
    24: "Electronic Drum Kit",
    25: "TR-808 Drum Kit",
    32: "Jazz Drum Kit",
    40: "Brush Drum Kit",
    48: "Orchestra Kit",
}

# Where a melody instrument sounds best (MIDI note at the middle of its range); the
# default is 72. Low instruments would otherwise sit in the bass's register.
MELODY_CENTER: dict[int, int] = {
    24: 67, 25: 67, 26: 67, 27: 69, 28: 67, 29: 67, 30: 67, 40: 76, 41: 69, 42: 57,
    56: 70, 57: 62, 58: 55, 59: 70, 60: 64, 61: 67, 64: 72, 65: 68, 66: 62, 67: 57,
    68: 72, 69: 68, 70: 58, 71: 67, 72: 81, 73: 76, 74: 76, 75: 74, 22: 69, 21: 67,
    105: 67, 110: 74, 8: 79, 9: 81, 10: 79, 14: 72,
}  # fmt: skip


@dataclass(frozen=True)
class InstrumentWord:
    """A phrase naming an instrument: the role it plays and its General MIDI program."""

    phrase: str
    role: str  # melody | chords | bass | pad | kit
    program: int


# Longer phrases first, so "electric piano" wins over "piano" and "synth bass" over "synth".
INSTRUMENT_WORDS: tuple[InstrumentWord, ...] = tuple(
    InstrumentWord(phrase, role, program)
    for phrase, role, program in (
        ("electric piano", "chords", 4),
        ("rhodes", "chords", 4),
        ("wurlitzer", "chords", 5),
        ("clavinet", "chords", 7),
        ("clav", "chords", 7),
        ("harpsichord", "chords", 6),
        ("honky tonk piano", "chords", 3),
        ("grand piano", "chords", 0),
        ("acoustic guitar", "chords", 25),
        ("nylon guitar", "chords", 24),
        ("ukulele", "chords", 24),
        ("classical guitar", "chords", 24),
        ("jazz guitar", "chords", 26),
        ("electric guitar", "chords", 27),
        ("clean guitar", "chords", 27),
        ("muted guitar", "chords", 28),
        ("distorted guitar", "chords", 30),
        ("overdriven guitar", "chords", 29),
        ("slide guitar", "melody", 26),
        ("guitar solo", "melody", 29),
        ("synth bass", "bass", 38),
        ("slap bass", "bass", 36),
        ("upright bass", "bass", 32),
        ("double bass", "bass", 32),
        ("acoustic bass", "bass", 32),
        ("fretless bass", "bass", 35),
        ("bass guitar", "bass", 33),
        ("808s", "bass", 38),
        ("808", "bass", 38),
        ("sub bass", "bass", 38),
        ("reese", "bass", 39),
        ("string quartet", "pad", 48),
        ("string section", "pad", 48),
        ("strings", "pad", 48),
        ("synth strings", "pad", 50),
        ("choir", "pad", 52),
        ("voices", "pad", 53),
        ("synth pads", "pad", 89),
        ("synth pad", "pad", 89),
        ("pads", "pad", 89),
        ("pad", "pad", 89),
        ("brass section", "pad", 61),
        ("horns", "pad", 61),
        ("brass", "pad", 61),
        ("french horn", "melody", 60),
        ("music box", "melody", 10),
        ("alto sax", "melody", 65),
        ("tenor sax", "melody", 66),
        ("saxophone", "melody", 66),
        ("sax", "melody", 66),
        ("muted trumpet", "melody", 59),
        ("trumpet", "melody", 56),
        ("trombone", "melody", 57),
        ("flute", "melody", 73),
        ("piccolo", "melody", 72),
        ("pan flute", "melody", 75),
        ("recorder", "melody", 74),
        ("whistle", "melody", 78),
        ("violin", "melody", 40),
        ("fiddle", "melody", 110),
        ("viola", "melody", 41),
        ("cello", "melody", 42),
        ("clarinet", "melody", 71),
        ("oboe", "melody", 68),
        ("bassoon", "melody", 70),
        ("harmonica", "melody", 22),
        ("accordion", "chords", 21),
        ("banjo", "melody", 105),
        ("mandolin", "melody", 105),
        ("sitar", "melody", 104),
        ("kalimba", "melody", 108),
        ("steel drums", "melody", 114),
        ("vibraphone", "melody", 11),
        ("vibes", "melody", 11),
        ("marimba", "melody", 12),
        ("xylophone", "melody", 13),
        ("glockenspiel", "melody", 9),
        ("chimes", "melody", 14),
        ("bells", "melody", 10),
        ("celesta", "melody", 8),
        ("harp", "chords", 46),
        ("church organ", "chords", 19),
        ("hammond", "chords", 16),
        ("organ", "chords", 16),
        ("lead synth", "melody", 81),
        ("synth lead", "melody", 81),
        ("arpeggiator", "melody", 81),
        ("synths", "melody", 81),
        ("synth", "melody", 81),
        ("guitars", "chords", 27),
        ("guitar", "chords", 27),
        ("piano", "chords", 0),
        ("keys", "chords", 4),
        # Drum kits (GS program numbers on the percussion channel).
        ("808 drums", "kit", 25),
        ("tr 808", "kit", 25),
        ("brushes", "kit", 40),
        ("brush", "kit", 40),
        ("jazz drums", "kit", 32),
        ("electronic drums", "kit", 24),
        ("drum machine", "kit", 24),
        ("timpani", "kit", 48),
        ("orchestral percussion", "kit", 48),
        ("live drums", "kit", 8),
        ("big drums", "kit", 16),
    )
)


@dataclass(frozen=True)
class Mood:
    """A mood and how it leans the plan; every field is a small nudge, never a rule.

    ``minor`` moves the chance of a minor-like mode (+1 = always minor), ``tempo`` moves
    the tempo within the genre's range (-1 = its bottom), ``energy`` is added to the
    plan's energy, ``room`` to the reverb amount, ``density`` scales how busy the melody is.
    """

    key: str
    label: str
    words: tuple[str, ...]
    minor: float = 0.0
    tempo: float = 0.0
    energy: float = 0.0
    room: float = 0.0
    density: float = 1.0
    pad: tuple[int, ...] = ()
    melody: tuple[int, ...] = ()


MOODS: tuple[Mood, ...] = (
    Mood("calm", "Calm", ("calm", "relaxing", "relaxed", "relax", "peaceful", "serene",
         "soothing", "tranquil", "mellow", "gentle", "soft", "quiet", "sleep", "sleepy", "lullaby"),
         tempo=-0.6, energy=-0.25, room=0.05, density=0.7),
    Mood("happy", "Happy", ("happy", "joyful", "cheerful", "playful", "fun", "sunny", "bright",
         "carefree", "summer", "summery"), minor=-0.9, tempo=0.3, energy=0.1, density=1.1),
    Mood("sad", "Sad", ("sad", "melancholic", "melancholy", "somber", "sombre", "sorrowful",
         "heartbroken", "lonely", "grief", "tearful", "blue"), minor=0.85, tempo=-0.5,
         energy=-0.15, room=0.05, density=0.8, pad=(48,)),
    Mood("dark", "Dark", ("dark", "ominous", "sinister", "brooding", "menacing", "eerie",
         "haunting", "creepy", "gloomy"), minor=0.9, tempo=-0.1, room=0.05,
         pad=(95, 52)),
    Mood("energetic", "Energetic", ("energetic", "upbeat", "hype", "intense", "powerful",
         "pumping", "party", "workout", "aggressive", "hard", "banging"), tempo=0.7,
         energy=0.25, density=1.2),
    Mood("epic", "Epic", ("epic", "heroic", "triumphant", "grand", "majestic", "anthem",
         "anthemic", "victorious", "battle"), minor=0.3, tempo=0.2, energy=0.3, room=0.08,
         pad=(48, 61)),
    Mood("dreamy", "Dreamy", ("dreamy", "ethereal", "floating", "hazy", "dreamlike", "airy",
         "celestial", "space", "spacey", "cosmic"), tempo=-0.3, energy=-0.1, room=0.12,
         density=0.75, pad=(88, 94), melody=(8, 10, 11)),
    Mood("romantic", "Romantic", ("romantic", "tender", "love", "loving", "intimate",
         "sensual"), minor=-0.2, tempo=-0.3, energy=-0.1, room=0.05, density=0.9),
    Mood("mysterious", "Mysterious", ("mysterious", "mystery", "suspense", "suspenseful",
         "tense", "tension", "noir"), minor=0.85, tempo=-0.2, room=0.08, pad=(95,)),
    Mood("uplifting", "Uplifting", ("uplifting", "hopeful", "inspiring", "inspirational",
         "motivational", "optimistic", "positive"), minor=-0.8, tempo=0.3, energy=0.15),
    Mood("nostalgic", "Nostalgic", ("nostalgic", "nostalgia", "wistful", "retro", "vintage",
         "memories"), minor=0.2, tempo=-0.2, room=0.05, density=0.9),
    Mood("cozy", "Cozy", ("cozy", "cosy", "warm", "rainy", "autumn", "fireplace", "coffee",
         "cafe"), minor=0.1, tempo=-0.3, energy=-0.1, density=0.85),
    Mood("focused", "Focused", ("focus", "focused", "study", "studying", "concentration",
         "concentrate", "work", "working", "productive", "coding"), tempo=-0.2, energy=-0.15,
         density=0.7),
)  # fmt: skip

# Scene words that make a better title adjective than the mood they imply.
TITLE_WORDS: tuple[tuple[str, str], ...] = (
    ("late night", "Late-Night"),
    ("rainy", "Rainy"),
    ("sunny", "Sunny"),
    ("midnight", "Midnight"),
    ("summer", "Summer"),
    ("autumn", "Autumn"),
    ("winter", "Winter"),
    ("neon", "Neon"),
)

# Tempo words: (phrase, shift within the genre's range, -1 = bottom, +1 = top).
TEMPO_WORDS: tuple[tuple[str, float], ...] = (
    ("very slow", -1.0),
    ("ballad", -0.8),
    ("slowly", -0.7),
    ("slow", -0.7),
    ("laid back", -0.5),
    ("laidback", -0.5),
    ("downtempo", -0.8),
    ("mid tempo", 0.0),
    ("midtempo", 0.0),
    ("uptempo", 0.7),
    ("up tempo", 0.7),
    ("very fast", 1.0),
    ("fast", 0.7),
    ("quick", 0.6),
    ("driving", 0.6),
    ("frantic", 1.0),
)

# Generic words name a family, not an instrument: "rock with guitar" keeps the genre's
# overdriven guitar, while "acoustic guitar" or "rhodes" ask for exactly that instrument.
GENERIC_WORDS = frozenset({"guitar", "guitars", "keys", "synth", "synths", "organ", "pad",
                           "pads", "brass", "horns", "strings"})  # fmt: skip

# Structure words that shape the form (see ``form.py``).
STRUCTURE_WORDS: tuple[tuple[str, str], ...] = (
    ("intro", "intro"),
    ("introduction", "intro"),
    ("build up", "build"),
    ("buildup", "build"),
    ("builds", "build"),
    ("build", "build"),
    ("rise", "build"),
    ("riser", "build"),
    ("drops", "drop"),
    ("drop", "drop"),
    ("breakdown", "breakdown"),
    ("break down", "breakdown"),
    ("bridge", "bridge"),
    ("outro", "outro"),
    ("verse", "verse"),
    ("chorus", "chorus"),
    ("hook", "chorus"),
    ("fade out", "fade"),
    ("fades out", "fade"),
    ("fade", "fade"),
)
