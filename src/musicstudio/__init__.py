"""musicstudio: a self-hostable music generation service speaking the Music Studio API."""

__version__ = "0.1.0"
