# Two commands for a newcomer: `make demo` and `make test`. Each builds .venv from nothing
# when it is missing or older than pyproject.toml, then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.avlab-installed

.PHONY: env demo ablate test browser lint typecheck bench clean

env: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision unpinned from PyPI: the CUDA build runs on CPUs too, and torchvision
	# has no CPU-only wheel that imports against the local CPU torch.
	$(PY) -m pip install --quiet torch torchvision
	$(PY) -m pip install --quiet -e '.[dev,notebook]'
	# tinysoundfont renders General MIDI for SynthAV with no system library; its pyaudio
	# dependency is only for live playback, so it is installed without dependencies.
	$(PY) -m pip install --quiet --no-deps tinysoundfont
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/avlab demo

# The seed papers' tables on SynthAV over three seeds (about an hour per seed on one CPU core).
ablate: $(STAMP)
	$(VENV)/bin/avlab ablate --preset seeds

# Unit tests, the doctests in avlab/, and the notebooks executed top to bottom (nbmake).
# tests/browser/ runs a notebook in JupyterLab in headless Chromium, hence `browser` first.
test: $(STAMP) browser
	$(PY) -m pytest -q --nbmake tests avlab notebooks

# The browser test drives Debian's chromium (/usr/bin/chromium, or $AVLAB_CHROMIUM) through
# Playwright: pip's playwright from the dev extra, with the system executable, since
# Playwright's own browser download is not used. Installed here when missing, which needs
# root; anyone else is told what to install. fonts-liberation (a Recommends) keeps the
# screenshots legible.
AVLAB_CHROMIUM ?= /usr/bin/chromium

browser:
	@if [ -x "$(AVLAB_CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-liberation; \
	else \
		echo "The browser test needs Chromium at $(AVLAB_CHROMIUM): run 'sudo apt-get install chromium'" \
		     "(Debian), or set AVLAB_CHROMIUM to a Chromium executable." >&2; \
		exit 1; \
	fi

# Throughput figures against their baselines, written to benchmarks/results/ (not part of test).
bench: $(STAMP)
	$(VENV)/bin/avlab bench

lint: $(STAMP)
	$(VENV)/bin/ruff check avlab tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy avlab

clean:
	rm -rf $(VENV) reports runs .pytest_cache
