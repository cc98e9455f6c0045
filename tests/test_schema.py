"""A database from an earlier version of Moyan upgrades at start-up without losing data."""
import os
import sqlite3

from app import create_app
from models import MIGRATIONS, Conversation, Image, Message, Setting

V0_DUMP = os.path.join(os.path.dirname(__file__), "data", "moyan-v0.sql")


def test_a_version_0_database_is_upgraded_with_everything_kept(fake, tmp_path, monkeypatch):
    data_dir = tmp_path / "old"
    data_dir.mkdir(mode=0o700)
    with sqlite3.connect(data_dir / "moyan.db") as old, open(V0_DUMP, encoding="utf-8") as dump:
        old.executescript(dump.read())
        assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    monkeypatch.setenv("MOYAN_DATA_DIR", str(data_dir))
    app = create_app({"IMAGE_WORKER": False})
    with app.app_context():
        conversation = Conversation.get()
        assert (conversation.title, conversation.system_prompt, conversation.is_pinned) == ("旧版本的对话", "你是老师", False)
        assert [m.content for m in conversation.messages()] == ["你好", "你好！有什么可以帮你？"]
        assert Message.get(Message.role == "assistant").total_tokens == 30
        assert Image.get().prompt == "花店"
        assert Setting.get_value("dashscope_text_model") == "qwen-max"
    with sqlite3.connect(data_dir / "moyan.db") as upgraded:
        assert upgraded.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert upgraded.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_database_starts_at_the_latest_version(app):
    with sqlite3.connect(os.path.join(app.config["DATA_DIR"], "moyan.db")) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert "is_pinned" in [row[1] for row in db.execute("PRAGMA table_info(conversation)")]


def test_the_sidebar_order_is_read_from_an_index_not_sorted(app):
    from models import Conversation, db
    sql, params = Conversation.in_sidebar_order().limit(50).sql()
    plan = " ".join(str(row) for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    assert "conversation_is_pinned_updated_at_id" in plan
    assert "TEMP B-TREE" not in plan
