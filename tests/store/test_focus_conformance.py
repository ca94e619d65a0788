"""Focus sessions' queries on SQLite and on PostgreSQL: the API tests whose answers depend on
them (segments queued, cancelled at the end, the daily budget, scoping), run on both."""

from __future__ import annotations

from tests.api.test_focus import (
    capped,
    test_end_is_graceful_and_idempotent,
    test_other_users_and_organizations_see_a_missing_session,
    test_the_daily_budget_stops_a_session_as_stopped_cap,
)

__all__ = [
    "capped",
    "test_end_is_graceful_and_idempotent",
    "test_other_users_and_organizations_see_a_missing_session",
    "test_the_daily_budget_stops_a_session_as_stopped_cap",
]
