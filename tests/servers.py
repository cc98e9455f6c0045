"""Private PostgreSQL and Redis servers on 127.0.0.1 for a test run.

    pg = Postgres(); pg.start()
    pg.create_database("moyan_test")
    pg.url("moyan_test")        # "postgresql://postgres@127.0.0.1:PORT/moyan_test"
    pg.drop_database("moyan_test"); pg.stop()

    redis = Redis(); redis.start()
    redis.url()                 # "redis://127.0.0.1:PORT/0"
    redis.stop()

Each start() makes a new temporary directory and picks a free port; stop() ends the
server and removes the directory. Both classes are also context managers. The PostgreSQL
cluster trades durability for speed (fsync, synchronous_commit and full_page_writes off),
trusts every local connection, and takes up to 200 connections. As root, initdb and
postgres run as the `postgres` system user, which Debian's package creates.

`python tests/servers.py` starts both, checks them and prints how long each step took.
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg
from psycopg import sql

INSTALL_HINT = ("run `make test` (which installs them) "
                "or `apt-get install postgresql redis-server`")
LOCALE = "C.UTF-8"
START_TIMEOUT = 30
ATTEMPTS = 3


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def version_key(path):
    name = path.rstrip("/").split("/")[-2]
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return ()


def postgres_bin(name):
    """The newest Debian PostgreSQL's program `name`, else the one on PATH."""
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin/"), key=version_key,
                         reverse=True):
        if os.access(os.path.join(bindir, name), os.X_OK):
            return os.path.join(bindir, name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} was not found: {INSTALL_HINT}")
    return found


def log_tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Server:
    """A throwaway server in a temporary directory (`dir`), on a free port of 127.0.0.1."""

    name = "the server"

    def __init__(self):
        self.dir = None
        self.port = None
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def launch(self, command, log, owner=None):
        """Run `command(port)` on a free port, again on another if that one was taken
        meanwhile, until it answers; its output goes to `log` (owned by `owner`)."""
        for _ in range(ATTEMPTS):
            self.port = free_port()
            with open(log, "w") as out:
                if owner:
                    shutil.chown(log, owner, owner)
                self.process = subprocess.Popen(
                    command(self.port), cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=out, start_new_session=True)
            if self._wait_ready():
                return self
            if self.process.poll() is None:
                break
        message = log_tail(log)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{message}")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.answers():
                return True
            time.sleep(0.02)
        return False

    def answers(self):
        raise NotImplementedError

    def _remove(self):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class Postgres(Server):
    """A throwaway PostgreSQL cluster, superuser `postgres`, no password."""

    name = "PostgreSQL"

    def _command(self, args):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return args

    def start(self):
        """Run initdb in a new temporary directory, then postgres; wait until it answers."""
        initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
        self.dir = tempfile.mkdtemp(prefix="moyan-pg-")
        data = os.path.join(self.dir, "data")
        if os.geteuid() == 0:
            try:
                shutil.chown(self.dir, "postgres", "postgres")
            except LookupError:
                self._remove()
                raise RuntimeError(f"there is no `postgres` user to run PostgreSQL as: "
                                   f"{INSTALL_HINT}") from None
        done = subprocess.run(
            self._command([initdb, "-D", data, "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", f"--locale={LOCALE}", "--no-sync",
                           "--no-instructions"]),
            cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode:
            self._remove()
            raise RuntimeError(f"initdb failed:\n{done.stdout}")
        return self.launch(
            lambda port: self._command([postgres, "-D", data, "-p", str(port), "-k", self.dir,
                                        "-c", "listen_addresses=127.0.0.1",
                                        "-c", "fsync=off", "-c", "synchronous_commit=off",
                                        "-c", "full_page_writes=off",
                                        "-c", "max_connections=200"]),
            os.path.join(self.dir, "postgres.log"), owner="postgres" if os.geteuid() == 0 else None)

    def answers(self):
        try:
            psycopg.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def _postmaster_pid(self):
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def stop(self):
        """Stop the server at once (immediate shutdown) and remove its directory."""
        if self.process and self.process.poll() is None:
            pid = self._postmaster_pid()
            try:
                os.kill(pid or self.process.pid, signal.SIGQUIT)
                self.process.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        self._remove()

    def url(self, dbname="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname="postgres"):
        """An autocommit connection as the superuser."""
        return psycopg.connect(self.url(dbname), autocommit=True)

    def create_database(self, name):
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name):
        """Drop it even while clients are still connected to it."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


class Redis(Server):
    """A throwaway redis-server that keeps nothing on disk."""

    name = "redis-server"

    def start(self):
        """Run redis-server as a child in its own session; wait until it answers PING."""
        program = shutil.which("redis-server")
        if not program:
            raise RuntimeError(f"redis-server was not found: {INSTALL_HINT}")
        self.dir = tempfile.mkdtemp(prefix="moyan-redis-")
        return self.launch(lambda port: [program, "--port", str(port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", self.dir],
                           os.path.join(self.dir, "redis.log"))

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._remove()

    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self):
        """Forget every key: each test starts with an empty Redis."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"FLUSHALL\r\n")
            assert s.recv(64).startswith(b"+OK")


def main():
    """Start both servers, check them, print how long each step took, stop both."""
    def step(name, function, *args):
        began = time.monotonic()
        result = function(*args)
        print(f"{name:<28}{time.monotonic() - began:7.3f} s")
        return result

    pg, redis = Postgres(), Redis()
    try:
        step("PostgreSQL start", pg.start)
        step("Redis start", redis.start)
        step("CREATE DATABASE", pg.create_database, "selfcheck")
        with pg.connect("selfcheck") as conn:
            conn.execute("CREATE EXTENSION pg_trgm")
            trigrams = conn.execute("SELECT show_trgm('一间花店的故事')").fetchone()[0]
            collate, ctype = conn.execute(
                "SELECT datcollate, datctype FROM pg_database "
                "WHERE datname = current_database()").fetchone()
            connections = conn.execute("SHOW max_connections").fetchone()[0]
        print(f"locale {collate}/{ctype}, max_connections {connections}")
        print(f"show_trgm('一间花店的故事') = {trigrams}")
        if not trigrams:
            raise SystemExit(f"no trigrams for CJK text with locale {LOCALE}")
        step("DROP DATABASE", pg.drop_database, "selfcheck")
        with socket.create_connection(("127.0.0.1", redis.port)) as s:
            s.sendall(b"PING\r\n")
            print(f"{redis.url()} PING -> {s.recv(64).decode().strip()}")
    finally:
        step("Redis stop", redis.stop)
        step("PostgreSQL stop", pg.stop)


if __name__ == "__main__":
    main()
