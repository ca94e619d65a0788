"""Queries. Every read of a tenant object takes ``(org_id, user_id)``: scoping lives here."""
