"""Move Moyan from SQLite to PostgreSQL: every row, ids unchanged, into an empty database.

    flask --app app move-to-postgresql postgresql://user:pass@host/moyan   (make move-to-postgresql TO=...)

Reads MOYAN_DATA_DIR/moyan.db (stop Moyan first). Settings come along, API keys
included; pictures stay in MOYAN_DATA_DIR/images, which the new setup must also see.
"""
import os

import click
from flask import current_app
from flask.cli import with_appcontext

from db import init_db
from models import Attachment, Conversation, Image, ImageTask, Message, Setting

# In the order their references need; login failures are not worth moving.
MOVED = [Setting, Conversation, ImageTask, Message, Image, Attachment]
BATCH = 500


@click.command("move-to-postgresql")
@click.argument("url")
@with_appcontext
def move_command(url):
    """Copy every row of MOYAN_DATA_DIR/moyan.db into the empty PostgreSQL database at URL."""
    if not url.startswith(("postgresql://", "postgres://", "postgresql+pool://")):
        raise click.BadParameter("需要一个 postgresql:// 开头的数据库地址。", param_hint="URL")
    source = os.path.join(current_app.config["DATA_DIR"], "moyan.db")
    if not os.path.exists(source):
        raise SystemExit(f"没有找到数据库 {source}。")
    counts = move(f"sqlite:///{source}", url)
    click.echo("已复制：" + "，".join(f"{name} {count} 行" for name, count in counts.items()))


def move(source_url, target_url):
    """Copy the rows; return how many of each model were moved."""
    source = init_db(source_url)  # brought to the latest schema first, like the target
    target = init_db(target_url)
    with target.connection_context():
        if any(model.select().exists() for model in MOVED):
            raise SystemExit("目标数据库不是空的：请换一个刚建好的空库，没有复制任何内容。")
    counts = {}
    with source.connection_context(), target.connection_context(), target.atomic():
        for model in MOVED:
            rows = model.select().order_by(model._meta.primary_key).dicts().execute(source)
            counts[model.__name__] = 0
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == BATCH:
                    counts[model.__name__] += insert(model, batch, target)
                    batch = []
            counts[model.__name__] += insert(model, batch, target)
        for model in MOVED[1:]:  # new rows continue after the moved ids
            table = model._meta.table_name
            target.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)")
    return counts


def insert(model, rows, database):
    if rows:
        model.insert_many(rows).execute(database)
    return len(rows)
