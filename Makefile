# One obvious command each: install, serve, test, bench, lint.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test soak bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# tinysoundfont declares pyaudio (no Linux wheel) for live playback we never use.
	$(BIN)/python -m pip install --quiet --no-deps 'tinysoundfont==0.3.7'
	@touch $(STAMP)

serve: install
	$(BIN)/musicstudio migrate
	$(BIN)/musicstudio serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest

# The guarantee tests of docs/guarantees.md at their large sizes (CI runs them small).
soak: install
	MUSICSTUDIO_TEST_SCALE=soak $(BIN)/python -m pytest -q tests/chaos \
		tests/store/test_claim_exclusivity.py tests/store/test_queue_state_machine.py \
		tests/contract

bench: install
	# wrk drives the list benchmark (Debian's package); without it the script falls back to
	# its Python load generator and says so.
	-@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/list_jobs.py
	$(BIN)/python bench/engine.py --rounds 3
	$(BIN)/python bench/engine.py --durations 60 --all-genres --rounds 3
	$(BIN)/python bench/jobs_queue.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
