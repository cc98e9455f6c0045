"""The fixtures. What tests import by name (helpers, constants) is in helpers.py and
browser_helpers.py; a test module never imports conftest."""
import os
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]  # the app's modules, and the helpers

from app import create_app  # noqa: E402
from fake_upstream import FakeUpstream  # noqa: E402
from helpers import (ON_POSTGRES, PASSWORD, LiveServer, app_env, end_generations, new_app,  # noqa: E402
                     new_database_url, postgres_database)
from servers import Postgres, Redis  # noqa: E402


@pytest.fixture(scope="session")
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(upstream):
    upstream.clear()
    return upstream


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


@pytest.fixture
def database_url(request):
    return new_database_url(request)


@pytest.fixture
def scaleout_env(request, fake, tmp_path, redis_server):
    """The environment of Moyan processes sharing a new PostgreSQL database and an emptied Redis."""
    redis_server.flush()
    return {**app_env(fake, tmp_path / "data", postgres_database(request)), "REDIS_URL": redis_server.url()}


@pytest.fixture
def app(fake, tmp_path, monkeypatch, database_url):
    for name, value in app_env(fake, tmp_path / "data", database_url).items():
        monkeypatch.setenv(name, value)
    app = create_app({"TESTING": True, "LOGIN_FAILURE_DELAY": 0})
    yield app
    app.extensions["painter"].stop()
    end_generations(app)


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


@pytest.fixture
def locked_app(fake, tmp_path, monkeypatch):
    """A Moyan behind its access password (PASSWORD); `helpers.login()` lets a client in."""
    return new_app(monkeypatch, fake, tmp_path / "locked", MOYAN_PASSWORD=PASSWORD)


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
