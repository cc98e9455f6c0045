"""Backups: the database and every picture in one archive, API keys left out.

    python -m services.backup create [ARCHIVE]     (make backup)
    python -m services.backup restore ARCHIVE      (make restore FILE=...)

Safe while Moyan runs: the database is copied with SQLite's online backup.
"""
import datetime
import os
import sqlite3
import sys
import tarfile
import tempfile

SECRET_SETTINGS = ("dashscope_api_key", "openrouter_api_key", "secret_key")


def data_dir():
    return os.environ.get("MOYAN_DATA_DIR", "data")


def create(archive=None):
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("数据库在 PostgreSQL 上：请用 pg_dump 备份数据库，并另外复制图片目录（见 docs/DEPLOY.md）。")
    source = os.path.join(data_dir(), "moyan.db")
    if not os.path.exists(source):
        raise SystemExit(f"没有找到数据库 {source}，没有可备份的内容。")
    archive = archive or os.path.join("backups", datetime.datetime.now().strftime("moyan-%Y%m%d-%H%M%S.tar.gz"))
    os.makedirs(os.path.dirname(archive) or ".", mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        copy = os.path.join(work, "moyan.db")
        copy_database(source, copy)
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(copy, arcname="moyan.db")
            images = os.path.join(data_dir(), "images")
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


def restore(archive, force=False):
    target = data_dir()
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


def main(argv):
    if argv[:1] == ["create"] and len(argv) <= 2:
        print(f"备份已写入 {create(*argv[1:])}（不含 API Key）")
    elif argv[:1] == ["restore"] and len(argv) in (2, 3):
        restore(argv[1], force="--force" in argv)
        print(f"已从 {argv[1]} 恢复到 {data_dir()}。请在「设置」里重新填写 API Key。")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
