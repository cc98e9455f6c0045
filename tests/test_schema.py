"""A database from an earlier version of Moyan upgrades at start-up without losing data."""
import os
import sqlite3

import pytest
from peewee import IntegerField
from playhouse.migrate import migrate

from app import create_app
from db import (MIGRATIONS, add_message_image_task_key, create_search_index, database, init_db, is_sqlite, migrator,
                rename_painting_columns, schema_version, set_schema_version)
from models import Conversation, Image, ImageTask, Message, Setting, UsageRecord

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
        assert ImageTask.get().provider_task_id == "abc"
        assert Setting.get_value("dashscope_text_model") == "qwen-max"
        ledger = {r.kind: r for r in UsageRecord.select()}  # what was used before the ledger
        assert (ledger["answer"].prompt_tokens + ledger["answer"].completion_tokens, ledger["answer"].cost) == (30, None)
        assert ledger["painting"].images == 1
        assert image_task_keys() == [("imagetask", "SET NULL")]
        assert [m.content for m in Message.select().where(Message.matching("有什么可以"))] == ["你好！有什么可以帮你？"]
    with sqlite3.connect(data_dir / "moyan.db") as upgraded:
        assert upgraded.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert upgraded.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.sqlite_only
def test_a_new_database_starts_at_the_latest_version(app):
    with sqlite3.connect(os.path.join(app.config["DATA_DIR"], "moyan.db")) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert "is_pinned" in [row[1] for row in db.execute("PRAGMA table_info(conversation)")]


@pytest.mark.sqlite_only
def test_the_sidebar_order_is_read_from_an_index_not_sorted(app):
    sql, params = Conversation.in_sidebar_order().limit(50).sql()
    plan = " ".join(str(row) for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    assert "conversation_is_pinned_updated_at_id" in plan
    assert "TEMP B-TREE" not in plan


def test_the_migrations_run_on_the_engine_in_use(app):
    """The latest schema taken back to version 0, then upgraded: on SQLite and, when the
    suite runs on it, on PostgreSQL."""
    app.extensions["painter"].stop()  # init_db below starts the database object anew
    with database.connection_context():
        conversation = Conversation.create(title="旧版本的对话")
        Message.create(conversation=conversation, role="user", content="你好")
        Message.create(conversation=conversation, role="assistant", content="你好！")
        ImageTask.create(model="wan2.2-t2i-flash", prompt="花店", source_file="a.png", source_image_id=1)
        assert schema_version() == len(MIGRATIONS)
        with database.atomic():
            migrate(*back_before_renaming_painting_columns())
            migrate(migrator().drop_index("conversation", "conversation_export_id"),
                    migrator().drop_column("conversation", "export_id"),
                    migrator().drop_index("conversation", "conversation_is_pinned_updated_at_id"),
                    migrator().drop_column("conversation", "is_pinned"),
                    *dropping_the_image_task_key(),
                    migrator().drop_column("message", "content_html"),
                    migrator().drop_column("imagetask", "lease_owner"),
                    migrator().drop_column("imagetask", "lease_until"),
                    migrator().drop_column("message", "is_excluded"),
                    migrator().drop_column("message", "moderated"),
                    migrator().drop_column("message", "cost"),
                    migrator().drop_column("message", "currency"),
                    migrator().drop_column("message", "is_usage_estimate"),
                    migrator().drop_column("message", "parent_id"),
                    migrator().drop_column("message", "is_chosen"),
                    migrator().drop_column("message", "is_current"),
                    migrator().drop_index("imagetask", "imagetask_source_image_id"),
                    migrator().drop_column("imagetask", "source_file"),
                    migrator().drop_column("imagetask", "source_image_id"),
                    migrator().drop_column("message", "is_vision_fallback"))
            set_schema_version(0)
    init_db(app.config["DATABASE_URL"])
    with database.connection_context():
        assert schema_version() == len(MIGRATIONS)
        upgraded = Conversation.get()
        assert (upgraded.title, upgraded.is_pinned) == ("旧版本的对话", False)
        assert len(upgraded.export_id) == 32
        assert [(m.content, m.image_task_id, m.is_excluded, m.moderated)
                for m in upgraded.messages()] == [("你好", None, False, ""), ("你好！", None, False, "")]
        question, answer = upgraded.messages()
        assert (question.parent_id, answer.parent_id) == (None, question.id)  # one path, as before
        assert answer.is_chosen and answer.is_current
        assert (ImageTask.get().prompt, ImageTask.get().lease_owner) == ("花店", "")
        assert (ImageTask.get().source_file, ImageTask.get().source_image_id) == ("", None)


def back_before_renaming_painting_columns():
    """The operations that take the painting columns back to their names before
    db.rename_painting_columns."""
    return [migrator().rename_column("image", "rewritten_prompt", "actual_prompt"),
            migrator().rename_column("image", "provider_task_id", "task_id"),
            migrator().drop_index("imagetask", "imagetask_provider_task_id"),
            migrator().rename_column("imagetask", "provider_task_id", "task_id"),
            migrator().add_index("imagetask", ("task_id",))]


def test_the_painting_columns_are_renamed_with_their_values_kept(app):
    """The provider's task id and rewritten prompt, saved under their old names, read under
    the new ones after the upgrade (SQLite, and PostgreSQL when the suite runs on it)."""
    app.extensions["painter"].stop()  # init_db below starts the database object anew
    with database.connection_context():
        task = ImageTask.create(model="wan2.2-t2i-flash", prompt="花店", provider_task_id="wan-123",
                                status=ImageTask.SUCCEEDED)
        Image.create(task=task, file="a.png", thumbnail="a.webp", width=8, height=8, prompt="花店",
                     rewritten_prompt="花店，写实", model=task.model, provider="dashscope", provider_task_id="wan-123")
        take_back_before_the_image_task_key()
        with database.atomic():
            migrate(*back_before_renaming_painting_columns())
            set_schema_version(MIGRATIONS.index(rename_painting_columns))
        assert "task_id" in [column.name for column in database.get_columns("imagetask")]
    init_db(app.config["DATABASE_URL"])
    with database.connection_context():
        assert schema_version() == len(MIGRATIONS)
        assert ImageTask.get().provider_task_id == "wan-123"
        assert (Image.get().provider_task_id, Image.get().rewritten_prompt) == ("wan-123", "花店，写实")
        indexes = {index.name: index.columns for index in database.get_indexes("imagetask")}
        assert indexes["imagetask_provider_task_id"] == ["provider_task_id"]
        assert "imagetask_task_id" not in indexes


def dropping_the_image_task_key():
    """The steps that drop message.image_task_id, its index and its foreign key: SQLite drops a
    column in a key only by rebuilding the table (which drops the search index's triggers)."""
    if not is_sqlite():
        return [migrator().drop_column("message", "image_task_id")]
    return [migrator().drop_index("message", "message_image_task_id"),
            migrator().drop_column("message", "image_task_id", legacy=True)]


def take_back_before_the_image_task_key():
    """message.image_task_id a plain number again, as before db.add_message_image_task_key."""
    migrate(*dropping_the_image_task_key(), migrator().add_column("message", "image_task_id", IntegerField(null=True)))
    if is_sqlite():  # the table was rebuilt without the search index's triggers, which it had
        database.execute_sql("DROP TABLE message_fts")
        create_search_index()


def image_task_keys():
    """The foreign keys of message.image_task_id: (referenced table, what deleting does)."""
    if is_sqlite():
        return [(row[2], row[6]) for row in database.execute_sql("PRAGMA foreign_key_list(message)")
                if row[3] == "image_task_id"]
    return database.execute_sql("""
        SELECT target.relname, CASE constraint_.confdeltype WHEN 'n' THEN 'SET NULL' ELSE constraint_.confdeltype::text END
        FROM pg_constraint AS constraint_ JOIN pg_class AS target ON target.oid = constraint_.confrelid
        JOIN pg_attribute AS key ON key.attrelid = constraint_.conrelid AND key.attnum = ANY (constraint_.conkey)
        WHERE constraint_.contype = 'f' AND constraint_.conrelid = 'message'::regclass
          AND key.attname = 'image_task_id'""").fetchall()


def test_a_new_database_links_a_painting_answer_to_its_task_by_a_foreign_key(app):
    with database.connection_context():
        assert image_task_keys() == [("imagetask", "SET NULL")]


def test_an_older_database_gets_the_image_task_key_with_every_message_kept(app):
    """Before the key, message.image_task_id was a plain number: the upgrade adds the key,
    clears an id whose task is gone, and keeps the search index and the message ids going."""
    app.extensions["painter"].stop()  # init_db below starts the database object anew
    with database.connection_context():
        conversation = Conversation.create(title="画图")
        task = ImageTask.create(model="wan2.2-t2i-flash", prompt="花店")
        painting = Message.create(conversation=conversation, role="assistant", image_task=task)
        Message.create(conversation=conversation, role="user", content="墨水屏的故事")
        newest = Message.create(conversation=conversation, role="assistant", content="以后删掉")
        take_back_before_the_image_task_key()
        Message.update(image_task=task.id).where(Message.id == painting.id).execute()
        lost = Message.create(conversation=conversation, role="assistant", image_task=task.id + 100)
        newest.delete_instance()
        set_schema_version(MIGRATIONS.index(add_message_image_task_key))
    init_db(app.config["DATABASE_URL"])
    with database.connection_context():
        assert schema_version() == len(MIGRATIONS)
        assert image_task_keys() == [("imagetask", "SET NULL")]
        assert Message.get_by_id(painting.id).image_task.prompt == "花店"
        assert Message.get_by_id(lost.id).image_task is None
        assert Message.select().where(Message.matching("墨水屏")).count() == 1
        later = Message.create(conversation=conversation, role="user", content="墨水屏又来了")
        assert later.id > newest.id  # an id once given is never given again
        assert Message.select().where(Message.matching("墨水屏")).count() == 2
        ImageTask.delete_by_id(task.id)
        assert Message.get_by_id(painting.id).image_task is None
