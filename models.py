"""The database: settings, conversations and messages, and schema upgrades."""
import datetime
import os

from peewee import (BooleanField, CharField, DatabaseProxy, DateTimeField, ForeignKeyField,
                    IntegerField, Model, TextField)
from playhouse.db_url import connect
from playhouse.sqlite_ext import AutoIncrementField

db = DatabaseProxy()


def now():
    return datetime.datetime.now()


def init_db(url):
    """Open the database at `url` (sqlite:///path or any playhouse.db_url URL) and upgrade it."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        is_new = not os.path.exists(path)
        database = connect(url, timeout=10, pragmas={
            "journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": "normal"})
        if is_new:
            # The database holds API keys: readable by the owner only.
            open(path, "a").close()
            os.chmod(path, 0o600)
    else:
        database = connect(url)
    db.initialize(database)
    with db.connection_context():
        upgrade_schema()
    return database


def open_db():
    db.connect(reuse_if_open=True)


def close_db(exc=None):
    if not db.is_closed():
        db.close()


class BaseModel(Model):
    class Meta:
        database = db


class Setting(BaseModel):
    key = CharField(primary_key=True)
    value = TextField()

    @classmethod
    def get_value(cls, key, default=None):
        row = cls.get_or_none(cls.key == key)
        return row.value if row else default

    @classmethod
    def set_value(cls, key, value):
        if value is None:
            cls.delete().where(cls.key == key).execute()
        else:
            cls.insert(key=key, value=value).on_conflict_replace().execute()

    @classmethod
    def all_values(cls):
        return {row.key: row.value for row in cls.select()}


class Conversation(BaseModel):
    # Ids are never reused: a browser still holding an old id must not reach a new row.
    id = AutoIncrementField()
    title = CharField(default="新对话")
    provider = CharField(default="dashscope")
    model = CharField(default="")
    system_prompt = TextField(default="")
    thinking = BooleanField(default=False)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now, index=True)

    @classmethod
    def latest(cls, query="", limit=200):
        conversations = cls.select().order_by(cls.updated_at.desc(), cls.id.desc())
        if query:
            matching = (Message.select(Message.conversation)
                        .where(Message.content.contains(query)))
            conversations = conversations.where(
                cls.title.contains(query) | cls.id.in_(matching))
        return conversations.limit(limit)

    def messages(self):
        return self.message_set.order_by(Message.id)

    def touch(self):
        self.updated_at = now()
        self.save(only=[Conversation.updated_at])


class Message(BaseModel):
    STREAMING, DONE, STOPPED, ERROR, INTERRUPTED = "streaming", "done", "stopped", "error", "interrupted"

    id = AutoIncrementField()
    conversation = ForeignKeyField(Conversation, on_delete="CASCADE")
    role = CharField()  # user | assistant
    content = TextField(default="")
    reasoning = TextField(default="")
    status = CharField(default=DONE)
    error = TextField(default="")
    provider = CharField(default="")
    model = CharField(default="")
    prompt_tokens = IntegerField(null=True)
    completion_tokens = IntegerField(null=True)
    total_tokens = IntegerField(null=True)
    created_at = DateTimeField(default=now)

    @property
    def is_streaming(self):
        return self.status == self.STREAMING

    @classmethod
    def history_before(cls, message):
        """The user/assistant turns that lead up to `message`, for the upstream prompt."""
        return (cls.select()
                .where((cls.conversation == message.conversation_id) & (cls.id < message.id))
                .order_by(cls.id))

    @classmethod
    def mark_interrupted(cls, *ids):
        """Answers (all, or those with `ids`) left streaming with nothing generating them:
        the server stopped in the middle. What was saved is kept."""
        query = cls.update(status=cls.INTERRUPTED,
                           error="服务在回答途中重启，回答被中断，已保留已生成的部分，可点击「重新生成」。")
        query = query.where(cls.status == cls.STREAMING)
        return query.where(cls.id.in_(ids)).execute() if ids else query.execute()


MODELS = [Setting, Conversation, Message]

# Each step upgrades a database of the previous version; append, never edit.
MIGRATIONS = []


def upgrade_schema():
    version = db.execute_sql("PRAGMA user_version").fetchone()[0] if is_sqlite() else None
    if not db.table_exists("conversation"):
        db.create_tables(MODELS)
        set_version(len(MIGRATIONS))
        return
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with db.atomic():
            step()
            set_version(number)


def is_sqlite():
    return db.obj.__class__.__name__.endswith("SqliteDatabase")


def set_version(number):
    if is_sqlite():
        db.execute_sql(f"PRAGMA user_version = {int(number)}")

