"""The library's queries on SQLite and on PostgreSQL: the tracks API tests, run on both.

``tests/store/conftest.py`` runs every test here once per backend; these are the API tests
whose answers depend on the library queries (order, filters, readability, soft delete).
"""

from __future__ import annotations

from tests.api.test_tracks import (
    test_library_is_newest_save_first_filtered_and_paginated,
    test_only_the_creator_deletes_and_the_track_leaves_every_library,
    test_other_users_and_organizations_see_a_missing_track,
)

__all__ = [
    "test_library_is_newest_save_first_filtered_and_paginated",
    "test_only_the_creator_deletes_and_the_track_leaves_every_library",
    "test_other_users_and_organizations_see_a_missing_track",
]
