"""Use cases: what the API, CLI and workers ask the service to do."""
