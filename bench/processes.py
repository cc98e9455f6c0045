"""Start the fake upstream and Moyan (gunicorn + gevent, as `make run` does), and read
the CPU time and memory of a process and its children from /proc."""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)

from conftest import LiveServer, app_env, free_port, wait_for_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


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


def start_moyan(fake, data_dir):
    server = LiveServer(app_env(fake, data_dir), os.path.join(data_dir, "server.log"))
    os.makedirs(data_dir, exist_ok=True)
    # Production timings, not the test suite's quick ones (its painter polls 10 times a second).
    server.env.update(MOYAN_READ_TIMEOUT="30", MOYAN_RETRY_DELAY="1", MOYAN_IMAGE_POLL_INTERVAL="2")
    server.start()
    time.sleep(0.5)  # the worker boots after the master listens
    return server


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

