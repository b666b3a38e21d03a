# callintake: the two set-up commands are `make demo` and `make test`; both are idempotent.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SAMPLES := $(sort $(wildcard audio_samples/*.wav audio_samples/*.mp3))

.PHONY: demo test lint bench system-deps test-system-deps services clean

## system packages, installed when missing: ffmpeg (read by pydub and Whisper); for the tests, sox with
## its AMR/MP3 formats (makes telephone recordings that Debian's ffmpeg cannot encode), and Debian's chromium
## with a Chinese font for the browser tests of the review pages (driven by Playwright; no browser is downloaded)
system-deps:
	@command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg; }

test-system-deps: system-deps
	@command -v sox >/dev/null 2>&1 && dpkg -s libsox-fmt-all >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sox libsox-fmt-all; }
	@command -v chromium >/dev/null 2>&1 && dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; }

# torch first, from the CPU build (a bare `torch` requirement would pull a multi-GB CUDA build)
$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -e '.[dev]'
	@touch $@

## the main job on embedded defaults: SQLite under ./data, in-process, the bundled model, audio_samples/
demo: system-deps $(VENV)/.installed
	$(VENV)/bin/callintake process $(SAMPLES)

## Redis and PostgreSQL for the tests, started when they are not up
services:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 && exit 0; sleep 1; done; \
		echo "Redis or PostgreSQL did not come up" >&2; exit 1

## the whole test suite, against real Redis, PostgreSQL and the bundled model
test: test-system-deps $(VENV)/.installed-dev services
	$(PY) -m pytest -q

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check pipeline workers api tests bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf data .pytest_cache
