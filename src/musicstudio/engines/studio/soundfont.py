"""Which General MIDI bank renders a track, what its licence allows, and a bank cache.

Resolution order: the configured SoundFont (if the file exists), Debian's FluidR3_GM,
the TimGM6mb bank shipped inside pretty_midi, and finally the built-in numpy synth.
``resolve_bank`` only looks at the file system (the API process calls it through
``capabilities()``); ``open_font`` parses a bank once per process and hands out cheap
clones that share the sample data.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from musicstudio.engines.base import Licence

log = logging.getLogger(__name__)

FLUIDR3_PATH = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SYSTEM_BANKS: tuple[Path, ...] = (FLUIDR3_PATH,)
BUNDLED_BANK_FILE = "TimGM6mb.sf2"
SYNTH_NAME = "musicstudio-synth"

BankSource = Literal["configured", "system", "bundled", "synth"]

SYNTH_LICENCE = Licence("commercial_cleared", SYNTH_NAME, True, False)


@dataclass(frozen=True)
class Bank:
    """A resolved sound source: a SoundFont file, or the built-in synth when ``path`` is None."""

    name: str
    path: Path | None
    source: BankSource
    licence: Licence

    @property
    def is_synth(self) -> bool:
        """True for the built-in numpy synth (no SoundFont file)."""
        return self.path is None


SYNTH_BANK = Bank(SYNTH_NAME, None, "synth", SYNTH_LICENCE)


def identify_bank(path: Path, source: BankSource) -> Bank:
    """Name and licence of a SoundFont file, recognised by its (symlink-resolved) file name.

    Resolving matters for Debian's ``default-GM.sf2``, a link to whichever bank is
    installed. Never overstate: anything not positively identified is "unclear", not for
    commercial use, and needs attribution.
    """
    stem = path.resolve().stem
    lowered = stem.lower()
    if "fluidr3" in lowered or "musescore" in lowered:
        licence = Licence("commercial_cleared", f"MIT ({stem})", True, False)
    elif "timgm6mb" in lowered:
        licence = Licence("unclear", "GPL-2.0 (TimGM6mb)", False, True)
    else:
        licence = Licence("unclear", "unverified SoundFont", False, True)
    return Bank(stem, path, source, licence)


def tinysoundfont_available() -> bool:
    """Whether the tinysoundfont package is installed (checked without importing it)."""
    return importlib.util.find_spec("tinysoundfont") is not None


def bundled_bank_path() -> Path | None:
    """TimGM6mb.sf2 inside the installed pretty_midi package, located without importing it."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_BANK_FILE
        if candidate.is_file():
            return candidate
    return None


def candidate_banks(
    configured: str | None,
    *,
    system_banks: Sequence[Path] = SYSTEM_BANKS,
    use_bundled: bool = True,
) -> list[Bank]:
    """Every usable bank in preference order, always ending with the synth."""
    banks: list[Bank] = []
    if tinysoundfont_available():
        if configured:
            path = Path(configured).expanduser()
            if path.is_file():
                banks.append(identify_bank(path, "configured"))
            else:
                _warn_once(f"configured:{configured}", "configured SoundFont %s not found", path)
        banks.extend(identify_bank(p, "system") for p in system_banks if p.is_file())
        bundled = bundled_bank_path() if use_bundled else None
        if bundled is not None:
            banks.append(identify_bank(bundled, "bundled"))
    banks = [b for b in banks if b.path is None or str(b.path) not in _FAILED]
    banks.append(SYNTH_BANK)
    return banks


def resolve_bank(
    configured: str | None,
    *,
    system_banks: Sequence[Path] = SYSTEM_BANKS,
    use_bundled: bool = True,
) -> Bank:
    """The bank a render would use now; cheap (file checks only, no loading)."""
    return candidate_banks(configured, system_banks=system_banks, use_bundled=use_bundled)[0]


class TsfFont(Protocol):
    """The part of tinysoundfont's low-level ``SoundFont`` object the renderer uses."""

    def set_output(self, output_mode: Any, samplerate: int, global_gain_db: float) -> None: ...
    def set_max_voices(self, max_voices: int) -> None: ...
    def get_preset_index(self, bank: int, preset: int) -> int: ...
    def channel_set_bank(self, channel: int, bank: int) -> None: ...
    def channel_set_preset_number(self, channel: int, number: int, drum: bool) -> None: ...
    def channel_midi_control(self, channel: int, controller: int, value: int) -> None: ...
    def channel_note_on(self, channel: int, key: int, velocity: float) -> None: ...
    def channel_note_off(self, channel: int, key: int) -> None: ...
    def render(self, buffer: Any, mix: bool = False) -> None: ...


_LOCK = threading.Lock()
# Parsed banks by resolved path. They are never played themselves, only cloned: a clone
# shares the decoded samples (FluidR3 is ~450 MB parsed) but has its own voices/channels.
_LOADED: dict[str, TsfFont] = {}
_FAILED: set[str] = set()
_WARNED: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message, *args)


def tsf_module() -> Any:
    """tinysoundfont's compiled module, or None when it cannot be imported."""
    try:
        return importlib.import_module("tinysoundfont._tinysoundfont")
    except Exception:  # an ImportError, or a broken binary wheel raising something else
        _warn_once("import", "tinysoundfont could not be imported; using the built-in synth")
        return None


def open_font(bank: Bank) -> TsfFont | None:
    """A fresh playable instance of ``bank``; None if it cannot be loaded (then remembered)."""
    if bank.path is None:
        return None
    tsf = tsf_module()
    if tsf is None:
        return None
    key = str(bank.path.resolve())
    with _LOCK:
        master = _LOADED.get(key)
        if master is None:
            if key in _FAILED:
                return None
            try:
                master = cast(TsfFont, tsf.SoundFont(key))
            except Exception:
                _FAILED.add(key)
                _FAILED.add(str(bank.path))
                log.warning("SoundFont %s could not be loaded; trying the next bank", bank.name)
                return None
            _LOADED[key] = master
        # Cloning bumps a non-atomic reference count inside the C library: keep it locked.
        return cast(TsfFont, tsf.SoundFont(master))


def output_mode_stereo() -> Any:
    """tinysoundfont's interleaved-stereo output mode constant."""
    tsf = tsf_module()
    return None if tsf is None else tsf.OutputMode.StereoInterleaved


def clear_cache() -> None:
    """Forget loaded and failed banks (tests use this; a service never needs to)."""
    with _LOCK:
        _LOADED.clear()
        _FAILED.clear()
        _WARNED.clear()
