# Moyan: `make run` starts it, `make test` runs every test, `make bench` measures it into
# docs/PERFORMANCE.md. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))
# Static files gzipped once, at level 9; WhiteNoise sends them to browsers that take gzip.
STATIC_GZ := $(addsuffix .gz,$(wildcard static/*.css static/*.js static/*.svg static/*.webmanifest))

.PHONY: run install install-scale test bench css translations lock screenshots chromium servers backup restore move-to-postgresql

run: install
	$(BIN)/gunicorn -c gunicorn.conf.py "app:create_app()"

# What `make run` needs, without starting it (a systemd unit's ExecStartPre: docs/DEPLOY.md).
install: $(VENV)/.runtime $(CATALOGUES) $(STATIC_GZ)

# The same plus the PostgreSQL and Redis clients, for several processes (docs/DEPLOY.md).
install-scale: $(VENV)/.scale $(CATALOGUES) $(STATIC_GZ)

# Every test on SQLite (and the several-process tests on PostgreSQL and Redis), then the
# suite again on PostgreSQL, browser tests aside: they drive the same views.
test: $(VENV)/.dev $(CATALOGUES) $(STATIC_GZ) chromium servers
	$(BIN)/python -m pytest
	MOYAN_TEST_DATABASE=postgresql $(BIN)/python -m pytest -m "not browser and not scaleout"

# Benchmarks print figures; they live in bench/, outside the test suite (about 10 minutes).
bench: $(VENV)/.bench $(CATALOGUES) $(STATIC_GZ) chromium
	$(BIN)/python bench/run.py

# Rebuild static/app.css after changing classes in templates/, partials/ or static/app.js.
css: $(VENV)/.dev
	$(BIN)/python static/src/pygments_css.py > static/src/pygments.css
	$(BIN)/tailwindcss -i static/src/app.css -o static/app.css --minify

# The README's screenshots (docs/screenshots/*.png), taken by the layout test; `make test`
# leaves them alone.
screenshots: $(VENV)/.dev $(CATALOGUES) chromium
	MOYAN_SCREENSHOTS=1 $(BIN)/python -m pytest -n 0 -q tests/test_browser_layout.py tests/test_browser_picture_loop.py \
	  -k "test_pages_fit or answered_by_a_model_that_can_see or editing_a_painting_makes"

# After adding or changing a user-visible string: re-extract it and update the English
# catalogue, then write the new translations into translations/en/LC_MESSAGES/messages.po.
translations: $(VENV)/.runtime
	$(BIN)/pybabel -q extract -F babel.cfg -k lazy_gettext -o translations/messages.pot .
	$(BIN)/pybabel -q update -i translations/messages.pot -d translations --no-fuzzy-matching

# The database and every picture in backups/moyan-DATE.tar.gz (API keys left out).
backup: $(VENV)/.runtime
	$(BIN)/flask --app app backup

# make restore FILE=backups/moyan-....tar.gz  (into an empty MOYAN_DATA_DIR)
restore: $(VENV)/.runtime
	$(BIN)/flask --app app restore "$(FILE)"

# make move-to-postgresql TO=postgresql://user:pass@host/moyan  (an empty database; stop Moyan
# first): every row of MOYAN_DATA_DIR/moyan.db, ids unchanged. docs/DEPLOY.md has the rest.
move-to-postgresql: $(VENV)/.scale
	$(BIN)/flask --app app move-to-postgresql "$(TO)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { $(APT) update && $(APT) install -y python3-venv && $(PYTHON) -m venv $(VENV); }

# Installs come from the lock files: every package, dependencies included, at a pinned
# version whose files must match the hashes recorded there. requirements*.txt say what we
# want; `make lock` turns them into the locks.
$(VENV)/.runtime: requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	touch $@

# Made again whenever its file changes (`make css`); not committed.
static/%.gz: static/%
	$(PYTHON) -m gzip --best $<

# The compiled catalogues (.mo) are not committed: each is built from its .po file.
%.mo: %.po $(VENV)/.runtime
	$(BIN)/pybabel -q compile -i $< -o $@

$(VENV)/.scale: requirements-scale.lock $(VENV)/.runtime
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-scale.lock
	touch $@

# The tests run on PostgreSQL and Redis too: the test tools come on top of the scale-out install.
$(VENV)/.dev: requirements-dev.lock $(VENV)/.scale
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	touch $@

$(VENV)/.bench: requirements-bench.lock $(VENV)/.dev
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-bench.lock
	touch $@

# After editing requirements*.txt: resolve them again into the locks (for this machine's
# Python, from PyPI), in a virtualenv of its own so that the project's stays as it is.
# Each lock holds the one before it (scale: runtime + scale-out; dev: scale + dev; bench: dev
# + bench), so each is installable alone.
LOCK_VENV := $(VENV)-lock
PIP_COMPILE := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(LOCK_VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --index-url https://pypi.org/simple
lock:
	[ -x $(LOCK_VENV)/bin/pip-compile ] || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet pip-tools; }
	$(PIP_COMPILE) -o requirements.lock requirements.txt
	$(PIP_COMPILE) -o requirements-scale.lock requirements.txt requirements-scale.txt
	$(PIP_COMPILE) -o requirements-dev.lock requirements.txt requirements-scale.txt requirements-dev.txt
	$(PIP_COMPILE) -o requirements-bench.lock requirements.txt requirements-scale.txt requirements-dev.txt requirements-bench.txt

# Browser tests drive Debian's chromium (Playwright's own browser download is not used),
# with a Chinese font so that screenshots show text, not boxes.
chromium:
	@command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q . || \
	  { $(APT) update && $(APT) install -y chromium fonts-noto-cjk; }

# The tests start private PostgreSQL and Redis servers (tests/servers.py) from Debian's
# packages; the system cluster and server that the packages set up are not used.
servers:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || \
	  { $(APT) update && $(APT) install -y postgresql redis-server; }
