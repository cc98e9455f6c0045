# Production server: one gevent worker holds hundreds of open answer streams cheaply.
# MOYAN_WORKERS > 1 needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL): docs/DEPLOY.md.
import os

from gunicorn.workers.base import Worker


class GeventWorker(Worker):
    """gunicorn's gevent worker, imported in the worker process only. The master creates
    each worker object before it forks, so naming "gevent" here would load gevent into the
    master too (6 MB it never uses); this stands in until the fork, then becomes it."""

    def init_process(self):
        from gunicorn.workers.ggevent import GeventWorker as Real
        self.__class__ = Real
        self.worker_connections = self.cfg.worker_connections  # what its __init__ would set
        Real.init_process(self)


bind = f"{os.environ.get('MOYAN_HOST', '127.0.0.1')}:{os.environ.get('MOYAN_PORT', '5000')}"
worker_class = GeventWorker
workers = int(os.environ.get("MOYAN_WORKERS", "1"))
if workers > 1 and not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
    raise SystemExit("MOYAN_WORKERS > 1 需要 PostgreSQL 和 Redis（DATABASE_URL、REDIS_URL），见 docs/DEPLOY.md。")
worker_connections = 2000
timeout = 60
graceful_timeout = 2
control_socket_disable = True  # one per user by default: two Moyans on one host would share it
accesslog = "-"
access_log_format = '%(p)s %(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'


def on_starting(server):
    """Refuse to serve a network without a password, or a database or Redis without its
    client, here, once, before listening: a worker that refused would be started again and
    again (services/open_bind.py)."""
    from services.open_bind import check_before_start, check_clients
    check_clients(os.environ)
    check_before_start(os.environ)


def when_ready(server):
    """Say where to open Moyan once it listens: gunicorn's own log names only the socket."""
    from services.open_bind import is_loopback
    host, port = bind.rsplit(":", 1)
    is_wildcard = host.strip("[]") in ("0.0.0.0", "::")
    url = f"http://{'127.0.0.1' if is_wildcard else host}:{port}"
    line = f"墨言已就绪，请在浏览器打开 {url}　Moyan is ready: open {url}"
    if not is_loopback(host):
        line += ("\n其他设备也能打开它（用这台机器的地址），由访问密码保护。"
                 "　Other devices can open it too (at this machine's address); a password protects it.")
    print(line, flush=True)


def post_fork(server, worker):
    """On SQLite, keep the PostgreSQL drivers out of the worker: Peewee imports any it finds
    installed (12 MB of memory), and the single-box default never uses them."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        import sys
        sys.modules.setdefault("psycopg", None)
        sys.modules.setdefault("psycopg2", None)
