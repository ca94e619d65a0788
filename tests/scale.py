"""Test sizes: small in ``make test`` (CI), large under ``make soak``.

``make soak`` sets ``MUSICSTUDIO_TEST_SCALE=soak``.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")


def soak() -> bool:
    """True when running the long, large version of the guarantee tests."""
    return os.environ.get("MUSICSTUDIO_TEST_SCALE", "").strip().lower() == "soak"


def scaled(ci: T, soak_size: T) -> T:
    """``ci`` normally, ``soak_size`` under ``make soak``."""
    return soak_size if soak() else ci
