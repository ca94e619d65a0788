"""Persistence: table definitions, connections and migrations."""
