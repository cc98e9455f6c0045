"""`make bench`: every measurement of issue 6, written to docs/PERFORMANCE.md.

Moyan runs under gunicorn + gevent (as `make run` starts it) against the test suite's
fake upstream; the load client, the fake and the server share this machine's cores.
Every stream latency is put next to a baseline from the same run: the same client
reading the fake directly.

`python bench/run.py scale [STREAMS ...]` measures only the scale-out section (one worker,
then two over PostgreSQL and Redis) and prints it, without writing docs/PERFORMANCE.md.
"""
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import processes  # noqa: E402  (first: it puts the app and tests/ on the path)
import browser  # noqa: E402
import history  # noqa: E402
import report  # noqa: E402
import streams  # noqa: E402
from helpers import HX  # noqa: E402

STREAM_LEVELS = [1, 10, 100, 500, 1000]
SCALE_LEVELS = [100, 500, 1000]  # among STREAM_LEVELS: their direct baselines serve both
SCALE_TIMEOUT = 60  # seconds for a 10-second answer: a stream still open then is stuck
CONFIGURATIONS = {"A": processes.one_worker, "B": processes.two_workers}
CHUNKS = 100  # 5 s at 20 chunks (tokens) a second
FIRST_TOKEN_RUNS = 20
HISTORY_LEVELS = [1_000, 10_000, 100_000]
GALLERY_IMAGES = 5_000


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else float("nan")


def summary(results):
    delays = [d * 1000 for r in results for d in r.delays]
    first = [r.first_token * 1000 for r in results if r.first_token is not None]
    late = [r.saved - r.chunks for r in results if not r.error and r.saved and r.saved > r.chunks]
    delivered = sum(max(r.chunks, r.saved or 0) for r in results)
    return {"median": statistics.median(delays) if delays else float("nan"),
            "p99": percentile(delays, 0.99), "max": max(delays, default=float("nan")),
            "chunks": len(delays), "first_token": statistics.median(first) if first else float("nan"),
            "errors": [r.error for r in results if r.error], "late": len(late), "late_chunks": sum(late),
            "delivered": delivered}


def ramp_for(count):
    """Seconds over which `count` streams start: 1 s for 100, at most 5 s."""
    return min(5.0, count * 0.01)


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def measure_streams(fake, workdir):
    server = processes.start_moyan(fake, os.path.join(workdir, "streams"))
    pid = server.process.pid
    try:
        history.time_requests(server.url + "/", repeat=5)
        figures = {"idle_rss": processes.rss_bytes(pid), "levels": {}}
        log("idle RSS", figures["idle_rss"] // 2**20, "MB")
        figures["first_token"] = {
            "direct": summary(streams.sequential(False, fake.url, FIRST_TOKEN_RUNS, 5)),
            "relay": summary(streams.sequential(True, server.url, FIRST_TOKEN_RUNS, 5)),
            "runs": FIRST_TOKEN_RUNS}
        log("first token", {k: round(figures["first_token"][k]["first_token"], 1) for k in ("direct", "relay")})
        for count in STREAM_LEVELS:
            ramp = ramp_for(count)
            direct = summary(streams.measure(False, fake.url, count, CHUNKS, ramp))
            peak = [processes.rss_bytes(pid)]
            cpu, fake_cpu, client_cpu = (processes.cpu_seconds(pid),
                                         processes.cpu_seconds(fake.process.pid), time.process_time())
            relay = summary(streams.measure(True, server.url, count, CHUNKS, ramp,
                                            on_tick=lambda: peak.append(processes.rss_bytes(pid))))
            chunks = max(1, relay["delivered"])  # live or in a snapshot, page and /send included
            relay.update(cpu_per_chunk=(processes.cpu_seconds(pid) - cpu) / chunks * 1e6,
                         fake_cpu_per_chunk=(processes.cpu_seconds(fake.process.pid) - fake_cpu) / chunks * 1e6,
                         client_cpu_per_chunk=(time.process_time() - client_cpu) / chunks * 1e6,
                         peak_rss=max(peak))
            figures["levels"][count] = {"direct": direct, "relay": relay}
            log(f"{count} streams: direct {direct['median']:.2f}/{direct['p99']:.2f} ms, relay "
                f"{relay['median']:.2f}/{relay['p99']:.2f} ms, {len(relay['errors'])} errors, "
                f"{relay['cpu_per_chunk']:.0f} µs CPU/chunk")
    finally:
        server.stop()
    return figures


def split_by_worker(results, log):
    """The streams whose answer came from the worker that streamed it, and those relayed
    from the other worker through Redis (as the access log tells); the rest are unknown."""
    workers = processes.workers_by_tag(log)
    pairs = [workers.get(r.tag, {}) for r in results]
    same = [r for r, w in zip(results, pairs) if len(w) == 2 and w["POST"] == w["GET"]]
    cross = [r for r, w in zip(results, pairs) if len(w) == 2 and w["POST"] != w["GET"]]
    return same, cross


def relay_with_costs(server, helpers, count):
    """`count` relayed streams, each request on a new connection; their summary with the
    CPU time of the server and of its `helpers` (pids) during the run, and its peak RSS."""
    pid = server.process.pid
    peak = [processes.rss_bytes(pid)]
    cpu, helper_cpu = processes.cpu_seconds(pid), sum(map(processes.cpu_seconds, helpers))
    results = streams.measure(True, server.url, count, CHUNKS, ramp_for(count), fresh=True,
                              timeout=SCALE_TIMEOUT, on_tick=lambda: peak.append(processes.rss_bytes(pid)))
    relay = summary(results)
    relay.update(cpu_seconds=processes.cpu_seconds(pid) - cpu, peak_rss=max(peak),
                 helper_cpu_seconds=sum(map(processes.cpu_seconds, helpers)) - helper_cpu if helpers else None,
                 streams=count, chunks_each=CHUNKS, held=sum(1 for r in results if not r.error))
    return results, relay


def measure_scale_level(server, helpers, count):
    """`count` streams through `server`: delays, costs, errors, and which worker gave what."""
    log_start = len(server.read_log())
    results, relay = relay_with_costs(server, helpers, count)
    time.sleep(1)  # a stream's access log line is written once its connection closes
    server_log = server.read_log()[log_start:]
    same, cross = split_by_worker(results, server_log)
    relay.update(same=summary(same), cross=summary(cross), same_count=len(same), cross_count=len(cross),
                 exceptions=processes.exceptions(server_log),
                 crashed=server_log.count("Exception in thread generation-"))
    return relay


def measure_scale(fake, workdir, levels=SCALE_LEVELS, direct=None):
    """Configuration A (one worker, SQLite) and B (two workers, PostgreSQL + Redis) at each
    number of streams, next to the `direct` baseline of each (measured here if not given)."""
    direct = direct or {count: summary(streams.measure(False, fake.url, count, CHUNKS, ramp_for(count)))
                        for count in levels}
    figures = {"direct": direct}
    for name, configuration in CONFIGURATIONS.items():
        began, figures[name] = time.monotonic(), {}
        with configuration(fake, os.path.join(workdir, f"scale-{name}")) as (server, helpers):
            for _ in range(10):  # on new connections, so that each worker gets some
                requests.get(server.url + "/", headers={"Connection": "close"}, timeout=30)
            for count in levels:
                r = figures[name][count] = measure_scale_level(server, helpers, count)
                log(f"{name}, {count} streams: {r['held']} held, {len(r['errors'])} errors, "
                    f"{r['cross_count']} across workers; relay {r['median']:.2f}/{r['p99']:.2f} ms "
                    f"(direct {direct[count]['median']:.2f}/{direct[count]['p99']:.2f}), "
                    f"{r['cpu_seconds']:.1f} s server CPU, {r['peak_rss'] / 2**20:.0f} MB")
        log(f"configuration {name} in {time.monotonic() - began:.0f} s")
    return figures


def measure_history(fake, workdir, count):
    data_dir = os.path.join(workdir, f"history-{count}")
    os.makedirs(data_dir)
    started = time.monotonic()
    long_id = history.seed_history(data_dir, count)
    log(f"{count} messages written in {time.monotonic() - started:.1f} s")
    server = processes.start_moyan(fake, data_dir)
    try:
        url = server.url
        figures = {
            "chat_page": history.time_requests(url + "/"),
            "sidebar": history.time_requests(url + "/conversations", HX),
            "open_long": history.time_requests(f"{url}/c/{long_id}", HX),
            "open_long_page": history.time_requests(f"{url}/c/{long_id}"),
            "search": history.time_requests(f"{url}/conversations?q={history.SEARCH_TERM}", HX),
            "browser": browser.load_times(url + "/"),
        }
        if count == HISTORY_LEVELS[-1]:
            figures["weight"] = browser.page_weight(url)
    finally:
        server.stop()
    log(f"{count} messages:", {k: round(v["median"], 1) for k, v in figures.items()
                               if isinstance(v, dict) and "median" in v})
    return figures


def measure_gallery(fake, workdir):
    from app import create_app
    data_dir = os.path.join(workdir, "gallery")
    app = create_app({"DATA_DIR": data_dir, "IMAGE_WORKER": False,
                      "DATABASE_URL": f"sqlite:///{os.path.join(data_dir, 'moyan.db')}"})
    sizes = history.seed_gallery(app, GALLERY_IMAGES)
    server = processes.start_moyan(fake, data_dir)
    try:
        first_page = history.time_requests(server.url + "/gallery")
        oldest_shown = history.first_page_last_id(server.url)
        next_page = history.time_requests(f"{server.url}/gallery?before={oldest_shown}", HX)
    finally:
        server.stop()
    log("gallery", round(first_page["median"], 1), round(next_page["median"], 1), "ms, thumbnails", sizes)
    return {"first_page": first_page, "next_page": next_page, "thumbnails": sizes}


def main_scale(levels):
    """Only the scale-out section, printed (for development)."""
    workdir = tempfile.mkdtemp(prefix="moyan-bench-")
    fake = processes.FakeProcess()
    try:
        figures = measure_scale(fake, workdir, levels or SCALE_LEVELS)
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(report.scale_table(figures), report.scale_reading(figures, os.cpu_count()), sep="\n\n")


def main():
    if sys.argv[1:2] == ["scale"]:
        return main_scale([int(count) for count in sys.argv[2:]])
    began = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="moyan-bench-")
    figures = {"machine": processes.machine(), "load_before": processes.load_average(),
               "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}
    fake = processes.FakeProcess()
    try:
        figures["streams"] = measure_streams(fake, workdir)
        figures["scale"] = measure_scale(fake, workdir, direct={
            count: figures["streams"]["levels"][count]["direct"] for count in SCALE_LEVELS})
        figures["scale_timeout"] = SCALE_TIMEOUT
        figures["history"] = {count: measure_history(fake, workdir, count) for count in HISTORY_LEVELS}
        figures["gallery"] = measure_gallery(fake, workdir)
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures["load_after"] = processes.load_average()
    figures["minutes"] = (time.monotonic() - began) / 60
    path = os.path.join(processes.ROOT, "docs", "PERFORMANCE.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(report.render(figures))
    log(f"wrote {path} in {figures['minutes']:.1f} min")


if __name__ == "__main__":
    main()
