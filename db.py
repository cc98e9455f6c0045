"""The database: the one Peewee object the models live on, its engine (SQLite, or PostgreSQL
through a connection pool), a connection per request, advisory locks, the search index and
the schema upgrades.

models.py declares the tables on `database`, so it imports this module; the steps that
upgrade an older schema import the models they need when they run.
"""
import os
import uuid
from contextlib import contextmanager

from peewee import (SQL, BooleanField, CharField, DatabaseProxy, DateTimeField, FloatField, IntegerField,
                    SqliteDatabase, TextField, fn)
from playhouse.db_url import connect, parse
from playhouse.migrate import SchemaMigrator, migrate
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

database = DatabaseProxy()

POSTGRESQL_SCHEMES = ("postgres", "postgresql", "postgres+pool", "postgresql+pool")
# Each process keeps at most 20 connections and a request waits (up to 30 s) for a free one
# rather than failing: hundreds of streams end at once. The URL's query may say otherwise
# (postgresql://…/moyan?max_connections=40).
POOL = {"max_connections": 20, "timeout": 30, "stale_timeout": 300}


def init_app(app):
    """Each request gets a connection from the pool, given back as soon as its response is
    made. The app opens the database itself (init_db) when it is going to serve."""
    app.before_request(open_db)
    app.after_request(release_db)
    app.teardown_request(close_db)


def init_db(url):
    """Open the database at `url` (sqlite:///path, postgresql://… through a connection pool,
    or another playhouse.db_url URL) and upgrade it."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        is_new = not os.path.exists(path)
        # Connections are kept and handed from request to request (opening one and setting
        # its pragmas cost more than most requests); a request waits for a free one.
        engine = PooledSqliteDatabase(path, max_connections=32, timeout=30, stale_timeout=600,
                                      check_same_thread=False, pragmas={
            "journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": "normal"})
        if is_new:
            # The database holds API keys: readable by the owner only.
            open(path, "a").close()
            os.chmod(path, 0o600)
    elif url.split("://")[0] in POSTGRESQL_SCHEMES:
        engine = PooledPostgresqlDatabase(**{**POOL, **parse(url, unquote_password=True)})
    else:
        engine = connect(url)
    database.initialize(engine)
    # Several workers start together: one at a time upgrades the schema.
    with database.connection_context(), one_process_at_a_time(SCHEMA_LOCK):
        upgrade_schema()
    return engine


# Advisory lock ids of our own (PostgreSQL).
SCHEMA_LOCK = 0x6D6F79616E  # "moyan"
SUBMIT_LOCK = SCHEMA_LOCK + 1


@contextmanager
def one_process_at_a_time(lock_id):
    """On PostgreSQL, a transaction that only one process holds at a time (an advisory
    lock). SQLite serves a single process: nothing to hold, and a transaction there would
    lock out every other writer."""
    if is_sqlite():
        yield
        return
    with database.atomic():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (lock_id,))
        yield


@contextmanager
def connection():
    """A connection for work that may run inside a request or outside one (a thread).
    Peewee's connection_context() closes on exit even a connection it did not open."""
    if not database.is_closed():
        yield
        return
    with database.connection_context():
        yield


def is_sqlite():
    return isinstance(database.obj, SqliteDatabase)


def open_db():
    database.connect(reuse_if_open=True)


def close_db(exc=None):
    if not database.is_closed():
        database.close()


def release_db(response):
    """after_request: give the connection back as soon as the response is made, not once it
    has been sent: with hundreds of slow clients, sending takes a while."""
    close_db()
    return response


# -- schema upgrades ---------------------------------------------------------------------

def add_conversation_pin():
    migrate(migrator().add_column("conversation", "is_pinned", BooleanField(default=False)))


def add_message_image_task():
    migrate(migrator().add_column("message", "image_task_id", IntegerField(null=True)))


def add_sidebar_order_index():
    migrate(migrator().add_index("conversation", ("is_pinned", "updated_at", "id")))


def add_message_content_html():
    migrate(migrator().add_column("message", "content_html", TextField(null=True)))


def add_image_task_lease():
    migrate(migrator().add_column("imagetask", "lease_owner", CharField(default="")),
            migrator().add_column("imagetask", "lease_until", DateTimeField(null=True)))


def add_conversation_export_id():
    from models import Conversation
    migrate(migrator().add_column("conversation", "export_id", CharField(default="")))
    for row in Conversation.select(Conversation.id).tuples():
        Conversation.update(export_id=uuid.uuid4().hex).where(Conversation.id == row[0]).execute()
    migrate(migrator().add_index("conversation", ("export_id",), unique=True))


def add_message_context_marks():
    migrate(migrator().add_column("message", "is_excluded", BooleanField(default=False)),
            migrator().add_column("message", "moderated", CharField(default="")))


def add_message_cost():
    migrate(migrator().add_column("message", "cost", FloatField(null=True)),
            migrator().add_column("message", "currency", CharField(default="")),
            migrator().add_column("message", "is_usage_estimate", BooleanField(default=False)))


def fill_usage_ledger():
    """The usage ledger starts with what the messages and pictures kept so far say
    (no cost: no price was known then)."""
    from models import Image, Message, UsageRecord
    zero, no = SQL("0"), SQL("false") if not is_sqlite() else SQL("0")
    columns = [UsageRecord.at, UsageRecord.kind, UsageRecord.provider, UsageRecord.model,
               UsageRecord.prompt_tokens, UsageRecord.completion_tokens, UsageRecord.reasoning_tokens,
               UsageRecord.images, UsageRecord.currency, UsageRecord.is_estimate, UsageRecord.is_imported,
               UsageRecord.conversation_id, UsageRecord.message_id, UsageRecord.image_task_id]
    answers = (Message.select(Message.created_at, SQL("'answer'"), Message.provider, Message.model,
                              fn.COALESCE(Message.prompt_tokens, 0), fn.COALESCE(Message.completion_tokens, 0),
                              zero, zero, SQL("''"), no, no, Message.conversation, Message.id, SQL("NULL"))
               .where((Message.role == "assistant") & (Message.total_tokens > 0)))
    UsageRecord.insert_from(answers, columns).execute()
    pictures = (Image.select(fn.MIN(Image.created_at), SQL("'painting'"), fn.MIN(Image.provider),
                             fn.MIN(Image.model), zero, zero, zero, fn.COUNT(Image.id), SQL("''"), no, no,
                             SQL("NULL"), SQL("NULL"), Image.task)
                .group_by(Image.task))
    UsageRecord.insert_from(pictures, columns).execute()


def add_message_versions():
    """Messages before versions form one path each: every message follows the one before it."""
    migrate(migrator().add_column("message", "parent_id", IntegerField(null=True)),
            migrator().add_column("message", "is_chosen", BooleanField(default=True)),
            migrator().add_column("message", "is_current", BooleanField(default=True)))
    database.execute_sql("""UPDATE message SET parent_id = (
        SELECT MAX(earlier.id) FROM message AS earlier
        WHERE earlier.conversation_id = message.conversation_id AND earlier.id < message.id)""")


def add_pictures_in_the_loop():
    migrate(migrator().add_column("imagetask", "source_file", CharField(default="")),
            migrator().add_column("imagetask", "source_image_id", IntegerField(null=True)),
            migrator().add_index("imagetask", ("source_image_id",)),
            migrator().add_column("message", "is_vision_fallback", BooleanField(default=False)))


def rename_painting_columns():
    """The provider's task id and its rewritten prompt get names of their own."""
    migrate(migrator().rename_column("imagetask", "task_id", "provider_task_id"),
            migrator().drop_index("imagetask", "imagetask_task_id"),
            migrator().add_index("imagetask", ("provider_task_id",)),
            migrator().rename_column("image", "task_id", "provider_task_id"),
            migrator().rename_column("image", "actual_prompt", "rewritten_prompt"))


def add_message_image_task_key():
    """message.image_task_id becomes a foreign key to its image task (SET NULL when the task
    goes). An id whose task is gone is cleared first: the key cannot hold it. SQLite adds a
    key only by rebuilding the table, which drops its triggers (the search index's: built
    again) and forgets the highest id ever given (kept, so that no id is given twice)."""
    database.execute_sql("UPDATE message SET image_task_id = NULL "
                         "WHERE image_task_id NOT IN (SELECT id FROM imagetask)")
    if not is_sqlite():
        migrate(migrator().add_foreign_key_constraint("message", "image_task_id", "imagetask", "id",
                                                      on_delete="SET NULL",
                                                      constraint_name="message_image_task_id_fkey"),
                migrator().add_index("message", ("image_task_id",)))
        return
    highest_id = database.execute_sql("SELECT seq FROM sqlite_sequence WHERE name = 'message'").fetchone()
    database.execute_sql("DROP TABLE IF EXISTS message_fts")
    key = IntegerField(null=True, constraints=[SQL('REFERENCES "imagetask" ("id") ON DELETE SET NULL')])
    migrate(migrator().alter_column_type("message", "image_task_id", key),
            migrator().add_index("message", ("image_task_id",)))
    if highest_id:
        database.execute_sql("DELETE FROM sqlite_sequence WHERE name = 'message'")
        database.execute_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('message', ?)", highest_id)
    create_search_index()


# Each step upgrades a database of the previous version; append, never edit.
MIGRATIONS = [add_conversation_pin, add_message_image_task, add_sidebar_order_index, add_image_task_lease,
              add_message_content_html, add_conversation_export_id, add_message_context_marks,
              add_message_cost, fill_usage_ledger, add_message_versions, add_pictures_in_the_loop,
              rename_painting_columns, add_message_image_task_key]


def migrator():
    return SchemaMigrator.from_database(database.obj)


# Full-text search over finished messages (a streaming answer's text changes every
# second; it is indexed once it ends). Trigrams match Chinese, which has no spaces.
MESSAGE_FTS = [
    """CREATE VIRTUAL TABLE message_fts USING fts5(
        content, content='message', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER message_fts_insert AFTER INSERT ON message WHEN new.status != 'streaming'
       BEGIN INSERT INTO message_fts(rowid, content) VALUES (new.id, new.content); END""",
    """CREATE TRIGGER message_fts_delete AFTER DELETE ON message WHEN old.status != 'streaming'
       BEGIN INSERT INTO message_fts(message_fts, rowid, content)
             VALUES ('delete', old.id, old.content); END""",
    """CREATE TRIGGER message_fts_update AFTER UPDATE OF content, status ON message
       BEGIN INSERT INTO message_fts(message_fts, rowid, content)
             SELECT 'delete', old.id, old.content WHERE old.status != 'streaming';
             INSERT INTO message_fts(rowid, content)
             SELECT new.id, new.content WHERE new.status != 'streaming'; END""",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
    """INSERT INTO message_fts(message_fts, rowid, content)
       SELECT 'delete', id, content FROM message WHERE status = 'streaming'""",
]


# PostgreSQL: a trigram index on the text, which ILIKE '%…%' uses (Chinese included).
MESSAGE_TRIGRAMS = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS message_content_trgm ON message USING gin (content gin_trgm_ops)",
]


def create_search_index():
    """The full-text index (and on SQLite the triggers that keep it), built from the
    messages there."""
    if not is_sqlite():
        for statement in MESSAGE_TRIGRAMS:
            database.execute_sql(statement)
        return
    if database.table_exists("message_fts"):
        return
    with database.atomic():
        for statement in MESSAGE_FTS:
            database.execute_sql(statement)


def upgrade_schema():
    """A new database gets every table at the latest version; an older one runs the
    steps it lacks, each in a transaction. New tables need no step."""
    from models import MODELS
    is_new = not database.table_exists("conversation")
    # Only missing tables: creating an existing table's indexes could name columns that
    # its migration steps have yet to add.
    database.create_tables([model for model in MODELS if not model.table_exists()])
    create_search_index()
    version = len(MIGRATIONS) if is_new else schema_version()
    # SQLite rebuilds a table to change a column: with foreign keys on, dropping the old
    # conversation table would cascade-delete every message.
    set_foreign_keys(False)
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with database.atomic():
            step()
            set_schema_version(number)
    set_foreign_keys(True)
    if is_new:
        set_schema_version(version)


def set_foreign_keys(is_on):
    if is_sqlite():
        database.pragma("foreign_keys", int(is_on))


# The schema's version: SQLite keeps it in the file's header; elsewhere a one-row table.
def schema_version():
    if is_sqlite():
        return database.pragma("user_version")
    database.execute_sql("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
    row = database.execute_sql("SELECT max(version) FROM schema_version").fetchone()
    return row[0] or 0


def set_schema_version(number):
    if is_sqlite():
        database.pragma("user_version", number)
        return
    database.execute_sql("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
    database.execute_sql("DELETE FROM schema_version")
    database.execute_sql("INSERT INTO schema_version (version) VALUES (%s)", (number,))
