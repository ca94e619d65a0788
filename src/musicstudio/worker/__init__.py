"""Workers: claim jobs, render them with an engine, store the result."""
