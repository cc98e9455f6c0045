"""What the tests share, imported by name (`from helpers import HX, ask, wait_until`). The
fixtures are in conftest.py and what drives chromium is in browser_helpers.py; a test
module never imports another test module, nor conftest."""
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time

import requests

from app import create_app
from fake_upstream import is_title_call
from models import ImageTask, ImportJob, Message
from servers import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HX = {"HX-Request": "true"}  # what htmx sends with each request it makes
DASHSCOPE_KEY = "sk-fake0000dashscope0000key1234"
OPENROUTER_KEY = "sk-or-v1-fake0000openrouter0000key5678"
PASSWORD = "correct horse"  # the access password of `locked_app`
PROVIDERS = [("dashscope", "qwen-plus"), ("openrouter", "openai/gpt-4o")]  # each with a model that answers

# `MOYAN_TEST_DATABASE=postgresql pytest` runs the suite on PostgreSQL: each test gets a
# new database on a private server (tests/servers.py); tests marked sqlite_only are skipped.
ON_POSTGRES = os.environ.get("MOYAN_TEST_DATABASE") == "postgresql"


def wait_until(condition, seconds=30):
    """Return `condition()` once it is true; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


# -- the app and its environment ------------------------------------------------------------

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


def new_app(monkeypatch, fake, data_dir, **env):
    """Another Moyan in this process (no painter), on `data_dir` with `env` set too."""
    for name, value in {**app_env(fake, data_dir), **env}.items():
        monkeypatch.setenv(name, value)
    return create_app({"TESTING": True, "LOGIN_FAILURE_DELAY": 0, "IMAGE_WORKER": False})


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


def end_generations(app, seconds=10):
    """Stop what a test left generating, and wait for its OpenRouter paintings: they write
    through the one database object, which the next test points at its own file."""
    app.extensions["generations"].stop_all(seconds)
    painter = app.extensions["painter"]
    wait_until(lambda: not painter.openrouter_tasks, seconds)


# -- over HTTP, with the test client ---------------------------------------------------------

def send(client, text, conversation_id="", provider="dashscope", model="", **extra):
    data = {"text": text, "conversation_id": conversation_id, "provider": provider,
            "model": model, "system_prompt": "", **extra}
    return client.post("/send", data=data, headers=HX)


def answer_id(response):
    return int(re.findall(r'id="msg-(\d+)"', response.text)[-1])


def read_stream(client, message_id):
    return client.get(f"/m/{message_id}/stream").get_data(as_text=True)


def ask(client, text="你好", **options):
    """Send a message and read its answer's stream to the end; return the final message."""
    response = send(client, text, **options)
    assert response.status_code == 200, response.text
    message_id = answer_id(response)
    read_stream(client, message_id)
    return Message.get_by_id(message_id)


def text_so_far(client, message_id):
    """What a listener joining the answer now gets first: its text so far."""
    follower = client.application.extensions["generations"].follow(message_id)
    if follower is None:  # it has ended
        return Message.get_by_id(message_id).content
    try:
        return next(follower)[1][0]  # ("snapshot", (content, reasoning))
    finally:
        follower.close()


def wait_until_streaming(client, message_id):
    """Wait until the running answer has its first words (the fake's answers start with 收到)."""
    wait_until(lambda: text_so_far(client, message_id).startswith("收到"))


def answer_calls(fake):
    """The streamed chat requests that answered a question (not those naming a conversation)."""
    return [r for r in fake.requests
            if (r["json"] or {}).get("stream") and not is_title_call(r["json"])]


def sent_texts(fake):
    """The message texts of the newest answer request."""
    return [m["content"] for m in answer_calls(fake)[-1]["json"]["messages"]]


def paint(client, prompt, **fields):
    """Post the painting form as the page sends it (Wan's fast model by default)."""
    data = {"prompt": prompt, "negative_prompt": "", "size": "1024*1024", "n": "1", "seed": "",
            "prompt_extend": "on", "provider": "dashscope", "model": "wan2.2-t2i-flash", **fields}
    return client.post("/images", data=data, headers=HX)


def last_task():
    return ImageTask.select().order_by(ImageTask.id.desc()).get()


def wait_for(image_task_id, seconds=20):
    """The image task, once it has ended."""
    wait_until(lambda: not ImageTask.get_by_id(image_task_id).is_running, seconds)
    return ImageTask.get_by_id(image_task_id)


def painted(client, prompt, **fields):
    """Paint and wait for the task to end; return it."""
    response = paint(client, prompt, **fields)
    assert response.status_code == 200, response.text
    return wait_for(last_task().id)


def imported(client, content):
    """Upload `content` and follow its import job to the end: the last answer."""
    upload = {"file": (io.BytesIO(content), "x.json")}
    response = client.post("/import", data=upload, headers=HX, content_type="multipart/form-data")
    if response.status_code != 200:
        return response
    job_id = int(re.search(r'id="import-job-(\d+)"', response.text).group(1))
    wait_until(lambda: not ImportJob.get_by_id(job_id).is_unfinished)
    return client.get(f"/import/{job_id}", headers=HX)


def save_settings(client, provider, **fields):
    """Post a provider's settings form (key, region, address…)."""
    return client.post(f"/settings/{provider}", data=fields, headers=HX)


def login(client, password=PASSWORD, next_url=None):
    """Fill in the login form, with its CSRF token."""
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"password": password, "csrf_token": token, **({"next": next_url} if next_url else {})}
    return client.post("/login", data=data)


# -- Moyan under gunicorn --------------------------------------------------------------------

def wait_for_port(port, process, seconds=20):
    def is_listening():
        if process.poll() is not None:
            raise RuntimeError("Moyan exited at start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    wait_until(is_listening, seconds)


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
        session.headers.update(HX)
        return session

    def read_log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()
