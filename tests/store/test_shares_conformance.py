"""Share links on SQLite and on PostgreSQL: the share API tests whose answers depend on the
store (token lookup, expiry comparison, ownership, position order, idempotent save, revoke).

``tests/store/conftest.py`` runs every test here once per backend.
"""

from __future__ import annotations

from tests.api.test_shares import (
    test_a_collection_share_lists_its_live_tracks_in_position_order,
    test_anyone_resolves_a_track_share_with_fresh_urls_and_its_licence,
    test_collection_shares_and_removed_tracks_cannot_be_saved,
    test_creating_a_track_share_returns_the_token_once_with_its_url,
    test_expiry_is_at_least_one_day_and_clamped_to_ninety,
    test_only_the_creator_or_owner_can_share,
    test_only_the_tokens_keyed_hash_is_stored,
    test_removed_content_resolves_as_unavailable,
    test_revoking_is_owner_only_idempotent_and_keeps_saved_copies,
    test_saving_a_shared_track_adds_it_to_the_savers_library_once,
    test_unknown_revoked_and_expired_tokens_answer_the_same_404,
)

__all__ = [
    "test_a_collection_share_lists_its_live_tracks_in_position_order",
    "test_anyone_resolves_a_track_share_with_fresh_urls_and_its_licence",
    "test_collection_shares_and_removed_tracks_cannot_be_saved",
    "test_creating_a_track_share_returns_the_token_once_with_its_url",
    "test_expiry_is_at_least_one_day_and_clamped_to_ninety",
    "test_only_the_creator_or_owner_can_share",
    "test_only_the_tokens_keyed_hash_is_stored",
    "test_removed_content_resolves_as_unavailable",
    "test_revoking_is_owner_only_idempotent_and_keeps_saved_copies",
    "test_saving_a_shared_track_adds_it_to_the_savers_library_once",
    "test_unknown_revoked_and_expired_tokens_answer_the_same_404",
]
