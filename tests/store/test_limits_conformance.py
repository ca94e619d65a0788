"""The live-job cap on SQLite and on PostgreSQL, where concurrent creates truly race."""

from __future__ import annotations

from tests.api.test_resource_limits import (
    capped,
    test_a_focus_session_that_does_not_fit_the_cap_is_refused_whole,
    test_an_organization_over_its_live_job_cap_gets_429_quota_exceeded,
    test_concurrent_creates_never_exceed_the_cap,
)

__all__ = [
    "capped",
    "test_a_focus_session_that_does_not_fit_the_cap_is_refused_whole",
    "test_an_organization_over_its_live_job_cap_gets_429_quota_exceeded",
    "test_concurrent_creates_never_exceed_the_cap",
]
