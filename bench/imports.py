"""`python bench/imports.py [MESSAGES]`: import an export of 400,000 short messages (about
18 MB) into Moyan under gunicorn + gevent while a probe asks for the sidebar every 20 ms;
print how long the request and the import took and how long the probe waited (the longest
wait is the longest the worker was held). Not part of `make bench`; nothing is asserted.
"""
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time

import processes  # noqa: E402  (first: it puts the app and tests/ on the path)


def export_of(count):
    messages = [{"role": ("user", "assistant")[i % 2], "content": f"消息 {i}"} for i in range(count)]
    data = {"format": "moyan.conversations", "version": 1,
            "conversations": [{"title": "大对话", "messages": messages}]}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def probe(server, waits, stop):
    """In a process of its own: the upload's encoding here would otherwise hold it up."""
    session = server.session()
    while not stop.is_set():
        start = time.perf_counter()
        session.get(server.url + "/conversations")
        waits.put(time.perf_counter() - start)
        time.sleep(0.02)


def main(count):
    raw = export_of(count)
    fake = processes.FakeProcess()
    with tempfile.TemporaryDirectory() as data_dir:
        server = processes.start_moyan(fake, data_dir)
        try:
            session = server.session()
            waits, stop = multiprocessing.Queue(), multiprocessing.Event()
            prober = multiprocessing.Process(target=probe, args=(server, waits, stop))
            prober.start()
            time.sleep(1)
            start = time.perf_counter()
            answer = session.post(server.url + "/import", files={"file": ("big.json", raw, "application/json")})
            answered = time.perf_counter() - start
            job = re.search(r'id="import-job-(\d+)"', answer.text).group(1)
            while "hx-trigger" in session.get(f"{server.url}/import/{job}").text:
                time.sleep(0.5)
            total = time.perf_counter() - start
            stop.set()
            waits = sorted(waits.get() for _ in range(waits.qsize()))
            prober.join()
        finally:
            server.stop()
            fake.stop()
    print(f"{count:,} messages, {len(raw) / 1e6:.1f} MB: the request answered in {answered * 1000:.0f} ms, "
          f"the import took {total:.1f} s")
    print(f"sidebar meanwhile ({len(waits)} requests): median {waits[len(waits) // 2] * 1000:.0f} ms, "
          f"p99 {waits[int(len(waits) * 0.99)] * 1000:.0f} ms, longest {waits[-1] * 1000:.0f} ms "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400_000)
