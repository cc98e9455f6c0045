"""One command backs up every conversation and picture; restoring gives them all back."""
import os
import subprocess
import sys
import tarfile

import pytest

from app import create_app
from helpers import HX, ROOT, ask, painted
from models import Conversation, Image, Message, Setting

pytestmark = pytest.mark.sqlite_only  # reads the SQLite file itself


def flask_command(*args, data_dir, **env):
    """`flask --app app ARGS` as a person runs it (make backup, make restore), on `data_dir`."""
    env = {**os.environ, "MOYAN_DATA_DIR": str(data_dir), **env}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_backup_restores_every_conversation_and_image_without_the_keys(app, client, fake, tmp_path, monkeypatch):
    client.post("/settings/dashscope", data={"region": "custom", "base_url": fake.dashscope_base,
                                             "api_key": "sk-fake-backup-key-12345678"}, headers=HX)
    for text in ("第一段对话", "第二段对话"):
        ask(client, text)
    image = painted(client, "一间花店", n="2").images().get()
    archive = tmp_path / "moyan.tar.gz"
    made = app.test_cli_runner().invoke(args=["backup", str(archive)])
    assert made.exit_code == 0 and "备份已写入" in made.output, made.output
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert "moyan.db" in names and f"images/{image.file}" in names
        assert b"sk-fake-backup-key" not in tar.extractfile("moyan.db").read()

    restored_dir = tmp_path / "restored"
    done = flask_command("restore", str(archive), data_dir=restored_dir)
    assert done.returncode == 0 and "请在「设置」里重新填写 API Key" in done.stdout, done.stderr
    app.extensions["painter"].stop()
    monkeypatch.setenv("MOYAN_DATA_DIR", str(restored_dir))
    restored = create_app({"IMAGE_WORKER": False})
    with restored.app_context():
        assert sorted(c.title for c in Conversation.select()) == ["收到：第一段对话", "收到：第二段对话"]
        assert Message.select().where(Message.role == "assistant", Message.status == "done").count() == 2
        assert Image.select().count() == 2
        assert Setting.get_value("dashscope_api_key") is None
        for kept in Image.select():
            assert os.path.getsize(restored_dir / "images" / kept.file) > 0


def test_restore_never_overwrites_existing_data(app, tmp_path):
    archive = tmp_path / "a.tar.gz"
    assert flask_command("backup", str(archive), data_dir=app.config["DATA_DIR"]).returncode == 0
    refused = flask_command("restore", str(archive), data_dir=app.config["DATA_DIR"])
    assert refused.returncode != 0 and "已经有数据库" in refused.stderr


def test_on_postgresql_make_backup_points_to_pg_dump_and_writes_nothing(tmp_path):
    made = flask_command("backup", str(tmp_path / "x.tar.gz"), data_dir=tmp_path,
                         DATABASE_URL="postgresql://moyan@127.0.0.1/moyan")
    assert made.returncode != 0 and "pg_dump" in made.stderr
    assert not (tmp_path / "x.tar.gz").exists()


def test_a_backup_without_a_database_says_so_and_makes_nothing(tmp_path):
    made = flask_command("backup", str(tmp_path / "x.tar.gz"), data_dir=tmp_path / "empty")
    assert made.returncode == 1 and "没有找到数据库" in made.stderr
    assert not (tmp_path / "x.tar.gz").exists() and not (tmp_path / "empty" / "moyan.db").exists()
