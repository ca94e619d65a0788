"""Object ids: a type prefix plus a ULID in lowercase Crockford base32 (sortable by time)."""

from __future__ import annotations

import re

from ulid import ULID

JOB = "mgen_"
TRACK = "mtrack_"
LIBRARY_ENTRY = "mlib_"
COLLECTION = "mcoll_"
FOCUS_SESSION = "mfocus_"
SHARE_LINK = "mslink_"
ORGANIZATION = "org_"
USER = "usr_"
API_KEY = "mkey_"

_ULID_RE = re.compile(r"[0-9a-hjkmnp-tv-z]{26}")


def new_id(prefix: str) -> str:
    """A fresh id: ``prefix`` + 26 lowercase ULID characters (48-bit ms time + 80 random bits)."""
    return prefix + str(ULID()).lower()


def is_valid(value: str, prefix: str) -> bool:
    """True when ``value`` is ``prefix`` followed by a well-formed lowercase ULID."""
    return value.startswith(prefix) and _ULID_RE.fullmatch(value[len(prefix) :]) is not None
