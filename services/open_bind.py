"""Whether Moyan may serve the address it is bound to: a network address needs a password.

gunicorn's master runs this before it listens (gunicorn.conf.py): a worker that refused
would be started again and again. Only the standard library is imported here: the master
must stay small (the workers fork from it) and must not load `requests` or Peewee before
gevent patches them in the worker.
"""
import importlib.util
import ipaddress
import os


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_open_to_network(config):
    """Bound to an address other computers reach, and not told that this is fine."""
    return not is_loopback(config["HOST"]) and not config["ALLOW_OPEN"]


def check_before_start(environ):
    """Exit with the reason, once, when bound to a network without a password."""
    config = {"HOST": environ.get("MOYAN_HOST", "127.0.0.1"),
              "ALLOW_OPEN": environ.get("MOYAN_ALLOW_OPEN") == "1"}
    if not is_open_to_network(config) or environ.get("MOYAN_PASSWORD"):
        return
    if not has_saved_password(database_url(environ)):
        raise SystemExit(refusal(config["HOST"]))


def check_clients(environ):
    """Exit with what to install when DATABASE_URL or REDIS_URL asks for a client that
    `make run` leaves out (the scale-out ones: `make install-scale`)."""
    wanted = [("PostgreSQL", "psycopg", environ.get("DATABASE_URL", "").startswith("postgres")),
              ("Redis", "redis", bool(environ.get("REDIS_URL")))]
    missing = [name for name, module, is_wanted in wanted if is_wanted and not importlib.util.find_spec(module)]
    if missing:
        names = "、".join(missing)
        raise SystemExit(f"设置了 DATABASE_URL/REDIS_URL，但还没有装 {names} 的客户端：请先运行 make install-scale"
                         f"（docs/DEPLOY.md）。　The {' and '.join(missing)} client is not installed: run"
                         " make install-scale first (docs/DEPLOY.md).")


def database_url(environ):
    data_dir = environ.get("MOYAN_DATA_DIR", "data")
    return environ.get("DATABASE_URL") or f"sqlite:///{os.path.join(data_dir, 'moyan.db')}"


def has_saved_password(url):
    """Whether the database at `url` holds a password saved in the settings; a database
    not made yet holds none (and is not made here)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not os.path.exists(path):
            return False
        import sqlite3  # only when bound to a network: the master stays 1 MB smaller otherwise
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as database:
            try:
                row = database.execute("SELECT value FROM setting WHERE key = 'password_hash'").fetchone()
            except sqlite3.OperationalError:  # no settings table yet
                return False
        return bool(row and row[0])
    from playhouse.db_url import connect  # PostgreSQL: only then, and only here
    database = connect(url, unquote_password=True)
    try:
        with database.connection_context():
            if not database.table_exists("setting"):
                return False
            row = database.execute_sql("SELECT value FROM setting WHERE key = 'password_hash'").fetchone()
            return bool(row and row[0])
    finally:
        getattr(database, "close_all", database.close)()  # nothing open to share with workers


def refusal(host):
    return (
        f"墨言拒绝启动：监听地址 {host} 可以被网络上的其他人访问，但还没有设置访问密码。"
        "请设置环境变量 MOYAN_PASSWORD（或先在本机的「设置」里设置访问密码），"
        "或确认要开放访问时设置 MOYAN_ALLOW_OPEN=1。\n"
        f"Moyan refuses to start: {host} is reachable from the network and no access password "
        "is set. Set MOYAN_PASSWORD, or MOYAN_ALLOW_OPEN=1 to allow open access.")
