"""Backups: the database and every picture in one archive, API keys left out.

    flask --app app backup [ARCHIVE]            (make backup)
    flask --app app restore ARCHIVE [--force]   (make restore FILE=...)

Safe while Moyan runs: the database is copied with SQLite's online backup.
"""
import datetime
import os
import sqlite3
import tarfile
import tempfile

import click
from flask import current_app
from flask.cli import with_appcontext

SECRET_SETTINGS = ("dashscope_api_key", "openrouter_api_key", "secret_key")


@click.command("backup")
@click.argument("archive", required=False)
@with_appcontext
def backup_command(archive):
    """The database and every picture in ARCHIVE (backups/moyan-DATE.tar.gz), API keys left out."""
    if current_app.config["DATABASE_URL"].startswith("postgres"):
        raise SystemExit("数据库在 PostgreSQL 上：请用 pg_dump 备份数据库，并另外复制图片目录（见 docs/DEPLOY.md）。")
    click.echo(f"备份已写入 {create(current_app.config['DATA_DIR'], archive)}（不含 API Key）")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite the database already in MOYAN_DATA_DIR.")
@with_appcontext
def restore_command(archive, force):
    """Put a backup's database and pictures into MOYAN_DATA_DIR (an empty one, unless --force)."""
    data_dir = current_app.config["DATA_DIR"]
    restore(archive, data_dir, force)
    click.echo(f"已从 {archive} 恢复到 {data_dir}。请在「设置」里重新填写 API Key。")


def create(data_dir, archive=None):
    source = os.path.join(data_dir, "moyan.db")
    if not os.path.exists(source):
        raise SystemExit(f"没有找到数据库 {source}，没有可备份的内容。")
    archive = archive or os.path.join("backups", datetime.datetime.now().strftime("moyan-%Y%m%d-%H%M%S.tar.gz"))
    os.makedirs(os.path.dirname(archive) or ".", mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        copy = os.path.join(work, "moyan.db")
        copy_database(source, copy)
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(copy, arcname="moyan.db")
            images = os.path.join(data_dir, "images")
            if os.path.isdir(images):
                tar.add(images, arcname="images")
    os.chmod(archive, 0o600)
    return archive


def copy_database(source, copy):
    """A consistent copy in one file, with the keys removed and their bytes gone."""
    live, target = sqlite3.connect(source), sqlite3.connect(copy, isolation_level=None)
    try:
        live.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # no -wal file beside the copy
        # Keys stay on the machine they were typed into.
        target.execute(f"DELETE FROM setting WHERE key IN ({','.join('?' * len(SECRET_SETTINGS))})",
                       SECRET_SETTINGS)
        target.execute("VACUUM")  # rewrite the file so freed pages keep no trace
    finally:
        live.close()
        target.close()


def restore(archive, target, force=False):
    if os.path.exists(os.path.join(target, "moyan.db")) and not force:
        raise SystemExit(f"{target} 里已经有数据库。为避免覆盖，请换一个空的 MOYAN_DATA_DIR，"
                         "或确认覆盖时加上 --force。")
    os.makedirs(target, mode=0o700, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")  # refuses absolute paths and ../
    for leftover in ("moyan.db-wal", "moyan.db-shm"):
        if os.path.exists(os.path.join(target, leftover)):
            os.remove(os.path.join(target, leftover))
    os.chmod(os.path.join(target, "moyan.db"), 0o600)
