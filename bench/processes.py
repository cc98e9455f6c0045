"""Start the fake upstream and Moyan (gunicorn + gevent, as `make run` does), alone or
with two workers over private PostgreSQL and Redis servers, and read the CPU time and
memory of a process and its children from /proc."""
import os
import re
import shlex
import subprocess
import sys
import time
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)

from helpers import LiveServer, app_env, wait_for_port  # noqa: E402
from servers import Postgres, Redis, free_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
# gunicorn.conf.py's access log line, then the worker's pid and the client's stream tag.
TAGGED_LOG = {"GUNICORN_CMD_ARGS": "--access-logformat " + shlex.quote(
    '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss %(p)s %({x-bench-stream}i)s')}
TAGGED_LINE = re.compile(r'"(POST|GET) (/send|/m/\d+/stream)" 200 .* <(\d+)> (\S+)$', re.MULTILINE)
# The last line of a traceback, unless another exception follows from it.
EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception): .*$"
                            r"(?!\n\n(?:During handling|The above exception))", re.MULTILINE)


class FakeProcess:
    """tests/fake_upstream.py in a process of its own, so its threads do not share the
    client's interpreter."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dashscope_base = self.url
        self.openrouter_base = self.url + "/openrouter/api/v1"
        self.process = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fake_upstream.py"),
                                         str(self.port)], stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def start_moyan(fake, data_dir, **env):
    """Moyan on a port of its own; `env` adds to or overrides the user's environment."""
    server = LiveServer(app_env(fake, data_dir), os.path.join(data_dir, "server.log"))
    os.makedirs(data_dir, exist_ok=True)
    # Production timings, not the test suite's quick ones (its painter polls 10 times a second).
    server.env.update(MOYAN_READ_TIMEOUT="30", MOYAN_RETRY_DELAY="1", MOYAN_IMAGE_POLL_INTERVAL="2",
                      **env)
    server.start()
    time.sleep(0.5)  # the worker boots after the master listens
    return server


@contextmanager
def one_worker(fake, data_dir):
    """Configuration A, as `make run`: one worker, SQLite; yields (server, [])."""
    server = start_moyan(fake, data_dir, **TAGGED_LOG)
    try:
        yield server, []
    finally:
        server.stop()


@contextmanager
def two_workers(fake, data_dir):
    """Configuration B: MOYAN_WORKERS=2 on one port over a private PostgreSQL and Redis
    (tests/servers.py); yields (server, [pid of PostgreSQL, pid of Redis])."""
    with Postgres() as postgres, Redis() as redis:
        postgres.create_database("moyan")
        server = start_moyan(fake, data_dir, DATABASE_URL=postgres.url("moyan"), REDIS_URL=redis.url(),
                             MOYAN_WORKERS="2", **TAGGED_LOG)
        try:
            yield server, [postgres.process.pid, redis.process.pid]
        finally:
            server.stop()


def exceptions(log):
    """{exception line, numbers as N: how often}, from the tracebacks in a server log."""
    counts = {}
    for line in EXCEPTION_LINE.findall(log):
        line = re.sub(r"\d+", "N", line.split("Exception in thread")[0].strip())
        counts[line] = counts.get(line, 0) + 1
    return counts


def workers_by_tag(log):
    """{stream tag: {"POST": pid, "GET": pid}}: the worker that took each stream's /send
    and the one that streamed its answer, from a TAGGED_LOG access log."""
    workers = {}
    for method, _, pid, tag in TAGGED_LINE.findall(log):
        workers.setdefault(tag, {})[method] = int(pid)
    return workers


def tree(pid):
    """`pid` and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children.get(current, [])
    return pids


def cpu_seconds(pid):
    """User + system CPU time of `pid` and its descendants (children still running)."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICKS


def rss_bytes(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def machine():
    """A short description of this machine, for the report."""
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), "unknown CPU")
    with open("/proc/meminfo") as f:
        memory = int(f.readline().split()[1]) // 1024
    try:
        with open("/etc/os-release") as f:
            system = next(line.split("=", 1)[1].strip().strip('"') for line in f
                          if line.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        system = "unknown OS"
    return {"cpu": model, "cores": os.cpu_count(), "memory_mb": memory, "os": system,
            "kernel": os.uname().release, "python": sys.version.split()[0]}


def load_average():
    return os.getloadavg()

