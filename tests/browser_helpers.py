"""What the chromium tests (test_browser_*.py) share: driving the page, and the live
server's database. The rest is in helpers.py, the fixtures in conftest.py."""
import os
import tempfile
from contextlib import contextmanager

from peewee import SqliteDatabase

from helpers import ROOT
from models import MODELS


def open_chat(page, live_server, provider="", model=""):
    """The new-chat page, with `provider` chosen, then `model` typed (choosing a provider sets its model)."""
    page.goto(live_server.url + "/")
    if provider:
        page.get_by_label("服务").select_option(provider)
    if model:
        page.get_by_label("模型").fill(model)
    return page


def ask(page, text):
    """Type a message and send it with Enter."""
    box = page.get_by_label("消息")
    box.fill(text)
    box.press("Enter")


def answer(page):
    return page.locator("article.answer").last


def question(page, text):
    return page.locator("article:not(.answer)", has_text=text)


@contextmanager
def live_db(page, live_server):
    """The live server's database, for making rows directly (its first page creates it)."""
    page.goto(live_server.url + "/")
    database = SqliteDatabase(live_server.env["MOYAN_DATA_DIR"] + "/moyan.db",
                              pragmas={"busy_timeout": 10000})
    with database.bind_ctx(MODELS), database.connection_context():
        yield


def shoot(page, name, is_readme=False, **options):
    """A screenshot to look at: in a temporary folder, or, under `make screenshots`
    (MOYAN_SCREENSHOTS=1), for the README in docs/screenshots."""
    is_readme = is_readme and os.environ.get("MOYAN_SCREENSHOTS") == "1"
    folder = os.path.join(ROOT, "docs", "screenshots") if is_readme else os.path.join(tempfile.gettempdir(), "moyan-layout")
    os.makedirs(folder, exist_ok=True)
    page.screenshot(path=os.path.join(folder, f"{name}.png"), **options)
