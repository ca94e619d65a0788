"""Crash chaos: worker processes killed at random, and the checker of what happened."""
