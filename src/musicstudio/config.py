"""Settings from the environment (``MUSICSTUDIO_*``): the only reader of ``os.environ``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

_PREFIX = "MUSICSTUDIO_"
T = TypeVar("T", int, float)


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(_PREFIX + name)
    return value if value not in (None, "") else default


def _env_number(name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{_PREFIX}{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    storage_url: str
    public_url: str | None
    playback_ttl_seconds: int
    workers: int
    lease_seconds: int
    max_attempts: int
    poll_seconds: float
    soundfont: str | None
    policy_file: str | None
    secret_key: bytes = field(repr=False)
    # Focus sessions: minutes of audio one user may have generated per UTC day.
    focus_minutes_per_day: int = 600
    # Per-key rate limit (token bucket): ``rate_limit_burst`` requests at once, refilled at
    # ``rate_limit_per_minute``. Shared by every API process through Redis when ``redis_url``.
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 120
    redis_url: str | None = None
    # Queued + running jobs one organization may have at once (429 QUOTA_EXCEEDED beyond).
    max_active_jobs_per_org: int = 500
    # Largest request body accepted (413 beyond).
    max_body_bytes: int = 65_536
    # Worker stop on SIGTERM: let the running job finish for ``stop_soft_seconds``, then
    # cancel it and release it to the queue, exiting at most ``stop_hard_seconds`` later.
    stop_soft_seconds: float = 30.0
    stop_hard_seconds: float = 10.0

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds / 3

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _load_or_create_secret(data_dir: Path) -> bytes:
    """The HMAC key: from the environment, else generated once into the data dir."""
    configured = _env("SECRET_KEY")
    if configured is not None:
        return configured.encode()
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        try:
            # Link, not rename: of two processes starting at once, the first one wins.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip().encode()


def load_settings() -> Settings:
    """Read every setting from the environment (documented in the README)."""
    data_dir = Path(_env("DATA_DIR", "./.musicstudio") or ".").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = _env("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'musicstudio.db'}"
    storage_url = _env("STORAGE_URL") or f"file://{data_dir / 'media'}"
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        storage_url=storage_url,
        public_url=(_env("PUBLIC_URL") or "").rstrip("/") or None,
        playback_ttl_seconds=_env_number("PLAYBACK_TTL_SECONDS", 900, int),
        workers=_env_number("WORKERS", 2, int),
        lease_seconds=_env_number("LEASE_SECONDS", 30, int),
        max_attempts=_env_number("MAX_ATTEMPTS", 3, int),
        poll_seconds=_env_number("POLL_SECONDS", 0.5, float),
        soundfont=_env("SOUNDFONT"),
        policy_file=_env("POLICY_FILE"),
        secret_key=_load_or_create_secret(data_dir),
        focus_minutes_per_day=_env_number("FOCUS_MINUTES_PER_DAY", 600, int),
        rate_limit_per_minute=_env_number("RATE_LIMIT_PER_MINUTE", 600, int),
        rate_limit_burst=_env_number("RATE_LIMIT_BURST", 120, int),
        redis_url=_env("REDIS_URL"),
        max_active_jobs_per_org=_env_number("MAX_ACTIVE_JOBS_PER_ORG", 500, int),
        max_body_bytes=_env_number("MAX_BODY_BYTES", 65_536, int),
        stop_soft_seconds=_env_number("STOP_SOFT_SECONDS", 30.0, float),
        stop_hard_seconds=_env_number("STOP_HARD_SECONDS", 10.0, float),
    )


LOG_FORMATS = ("text", "json")


def log_format() -> str:
    """``MUSICSTUDIO_LOG_FORMAT``: "text" (default) or "json" (one object per line)."""
    value = (_env("LOG_FORMAT") or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"{_PREFIX}LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()


@dataclass(frozen=True)
class ClientSettings:
    """What the CLI's client commands (``generate``) use to reach a running service."""

    url: str
    api_key: str | None
    org: str | None


def load_client_settings() -> ClientSettings:
    return ClientSettings(
        url=(_env("URL", "http://127.0.0.1:8000") or "").rstrip("/"),
        api_key=_env("API_KEY"),
        org=_env("ORG"),
    )
