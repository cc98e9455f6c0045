import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

import pytest
import requests
from peewee import SqliteDatabase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fake_upstream import FakeUpstream, is_title_call  # noqa: E402
from servers import Postgres, Redis  # noqa: E402

DASHSCOPE_KEY = "sk-fake0000dashscope0000key1234"
OPENROUTER_KEY = "sk-or-v1-fake0000openrouter0000key5678"


@pytest.fixture(scope="session")
def upstream():
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(upstream):
    upstream.clear()
    return upstream


# `MOYAN_TEST_DATABASE=postgresql pytest` runs the suite on PostgreSQL: each test gets a
# new database on a private server (tests/servers.py); tests marked sqlite_only are skipped.
ON_POSTGRES = os.environ.get("MOYAN_TEST_DATABASE") == "postgresql"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="SQLite only (the suite runs on PostgreSQL)")
    for item in items:
        if ON_POSTGRES and "sqlite_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres():
    with Postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server():
    with Redis() as server:
        yield server


def new_database_url(request):
    """"" for SQLite in the data folder (the default), else a new PostgreSQL database."""
    return postgres_database(request) if ON_POSTGRES else ""


def postgres_database(request):
    """The URL of a new database on the test run's PostgreSQL, dropped after the test."""
    server = request.getfixturevalue("postgres")
    name = "moyan_" + os.urandom(6).hex()
    server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    return server.url(name)


@pytest.fixture
def database_url(request):
    return new_database_url(request)


@pytest.fixture
def scaleout_env(request, fake, tmp_path, redis_server):
    """The environment of Moyan processes sharing a new PostgreSQL database and an emptied Redis."""
    redis_server.flush()
    return {**app_env(fake, tmp_path / "data", postgres_database(request)), "REDIS_URL": redis_server.url()}


def app_env(fake, data_dir, database_url=""):
    """The environment a user would set, pointed at the fake upstream."""
    return {"MOYAN_DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
            "MOYAN_DASHSCOPE_BASE_URL": fake.dashscope_base,
            "MOYAN_OPENROUTER_BASE_URL": fake.openrouter_base,
            "DASHSCOPE_API_KEY": DASHSCOPE_KEY,
            "OPENROUTER_API_KEY": OPENROUTER_KEY,
            "MOYAN_READ_TIMEOUT": "3.5",
            "MOYAN_RETRY_DELAY": "0.05",
            "MOYAN_IMAGE_POLL_INTERVAL": "0.2"}


@pytest.fixture
def app(fake, tmp_path, monkeypatch, database_url):
    from app import create_app
    for name, value in app_env(fake, tmp_path / "data", database_url).items():
        monkeypatch.setenv(name, value)
    app = create_app({"TESTING": True, "LOGIN_FAILURE_DELAY": 0})
    yield app
    app.extensions["painter"].stop()
    end_generations(app)


def end_generations(app, seconds=10):
    """Stop what a test left generating and wait for its threads: they write through the
    one database object, which the next test points at its own file."""
    app.extensions["generations"].stop_all(seconds)
    for thread in threading.enumerate():
        if thread.name.startswith(("openrouter-image-", "import-")):
            thread.join(seconds)


@pytest.fixture
def client(app):
    """A browser-like client: it has a session and sends its CSRF token, as htmx does."""
    client = app.test_client()
    client.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_token_of(client)
    return client


def csrf_token_of(client):
    client.get("/settings")
    with client.session_transaction() as session:
        return session["csrf_token"]


def answer_calls(fake):
    """The streamed chat requests that answered a question (not those naming a conversation)."""
    return [r for r in fake.requests
            if (r["json"] or {}).get("stream") and not is_title_call(r["json"])]


def shoot(page, name, is_readme=False, **options):
    """A screenshot to look at: in a temporary folder, or, under `make screenshots`
    (MOYAN_SCREENSHOTS=1), for the README in docs/screenshots."""
    is_readme = is_readme and os.environ.get("MOYAN_SCREENSHOTS") == "1"
    folder = os.path.join(ROOT, "docs", "screenshots") if is_readme else os.path.join(tempfile.gettempdir(), "moyan-layout")
    os.makedirs(folder, exist_ok=True)
    page.screenshot(path=os.path.join(folder, f"{name}.png"), **options)


def wait_until(condition, seconds=30):
    """Return once `condition()` is true; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Moyan exited at start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("Moyan did not start listening")


class LiveServer:
    """Moyan under its production server (gunicorn + gevent), as `make run` starts it."""

    def __init__(self, env, log_path):
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        env = {**os.environ, **self.env, "MOYAN_PORT": str(self.port)}
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", "gunicorn.conf.py",
             "app:create_app()"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for_port(self.port, self.process)

    def stop(self, kill=False):
        """Stop gracefully, or SIGKILL the master and its workers at once, like a crash."""
        if self.process and self.process.poll() is None:
            if kill:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.terminate()
            self.process.wait(10)
        self.log.close()

    def session(self):
        """A requests session that behaves like the page: cookie and CSRF header."""
        session = requests.Session()
        page = session.get(self.url + "/settings").text
        session.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)
        session.headers["HX-Request"] = "true"
        return session

    def read_log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


@contextmanager
def live_db(page, live_server):
    """The live server's database, for making rows directly (its first page creates it)."""
    from models import MODELS
    page.goto(live_server.url + "/")
    database = SqliteDatabase(live_server.env["MOYAN_DATA_DIR"] + "/moyan.db",
                              pragmas={"busy_timeout": 10000})
    with database.bind_ctx(MODELS), database.connection_context():
        yield


@pytest.fixture
def live_server(fake, tmp_path, database_url):
    server = LiveServer(app_env(fake, tmp_path / "data", database_url), tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium",
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-sync"]}


@pytest.fixture
def page(page):
    page.set_default_timeout(10_000)
    return page
