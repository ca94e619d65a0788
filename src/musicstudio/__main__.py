"""``python -m musicstudio`` runs the CLI."""

from musicstudio.cli import main

main()
