"""`make move-to-postgresql`: a SQLite Moyan moved into PostgreSQL loses nothing."""
import os
import subprocess
import sys

import pytest

from app import create_app
from helpers import HX, ROOT, ask, painted, postgres_database
from models import Conversation, Image, Setting


@pytest.mark.sqlite_only  # moves from SQLite
def test_everything_moves_from_sqlite_to_postgresql_with_ids_kept(app, client, fake, request, monkeypatch):
    first = ask(client, "一间花店的故事")
    ask(client, "接着说", conversation_id=first.conversation_id)
    image = painted(client, "花店").images().get()
    Setting.set_value("dashscope_text_model", "qwen-max")
    client.post(f"/c/{first.conversation_id}/pin", headers=HX)
    app.extensions["painter"].stop()
    target = postgres_database(request)
    moved = app.test_cli_runner().invoke(args=["move-to-postgresql", target])
    assert moved.exit_code == 0, moved.output
    assert "Message 4 行" in moved.output

    monkeypatch.setenv("DATABASE_URL", target)
    on_postgres = create_app({"TESTING": True, "IMAGE_WORKER": False})
    with on_postgres.app_context():
        conversation = Conversation.get_by_id(first.conversation_id)
        assert conversation.is_pinned and [m.content for m in conversation.messages()][0] == "一间花店的故事"
        assert Image.get_by_id(image.id).file == image.file
        assert Setting.get_value("dashscope_text_model") == "qwen-max"
        later = Conversation.create(title="搬家之后")
        assert later.id > first.conversation_id  # the sequences continue after the moved ids
    browser = on_postgres.test_client()
    assert "一间花店的故事" in browser.get("/conversations", query_string={"q": "花店"}).text
    assert browser.get(f"/files/{image.file}").status_code == 200

    env = {**os.environ, "MOYAN_DATA_DIR": app.config["DATA_DIR"]}
    again = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "move-to-postgresql", target],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "不是空的" in again.stderr
