"""The HTTP API (FastAPI): parse, call one service function, shape the response."""
