"""Stream measurements: the same asyncio client reads answers through Moyan and straight
from the fake upstream; each content chunk carries its send time, ⟨unix seconds⟩."""
import asyncio
import re
import time

import aiohttp

STAMP = re.compile(rb"\xe2\x9f\xa8(\d+\.\d+)\xe2\x9f\xa9")  # ⟨...⟩ in UTF-8
ANSWER = re.compile(r'sse-connect="/m/(\d+)/stream"')
MODEL = "bench-stamp-20"
STREAM_TIMEOUT = 120  # seconds; no stream here should take more than a minute


class Result:
    """What one stream gave: per-chunk delays (s), time to first token (s), errors."""

    def __init__(self):
        self.delays = []
        self.first_token = None
        self.chunks = 0
        self.error = None


def read_events(buffer, chunk):
    """Split complete SSE events (blank-line separated) off `buffer + chunk`."""
    buffer += chunk
    *events, rest = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
    return events, rest


def note_stamps(result, event, received, started):
    stamps = STAMP.findall(event)
    for stamp in stamps:
        result.delays.append(received - float(stamp))
    if stamps and result.first_token is None:
        result.first_token = received - started
    result.chunks += len(stamps)


async def read_stream(response, result, started, is_relay):
    buffer = b""
    async for chunk in response.content.iter_any():
        received = time.time()
        events, buffer = read_events(buffer, chunk)
        for event in events:
            if is_relay:
                if event.startswith(b"event: done"):
                    return True
                if event.startswith(b"event: content"):
                    note_stamps(result, event, received, started)
            else:
                if event.startswith(b"data: [DONE]"):
                    return True
                note_stamps(result, event, received, started)
    return False


async def relay_stream(session, base, chunks, result):
    """Post a message to Moyan, then read its answer's event stream."""
    started = time.time()
    form = {"text": f"{chunks}", "conversation_id": "", "provider": "dashscope",
            "model": MODEL, "system_prompt": ""}
    async with session.post(f"{base}/send", data=form, headers={"HX-Request": "true"}) as response:
        html = await response.text()
        if response.status != 200:
            raise RuntimeError(f"/send answered {response.status}")
    answer = ANSWER.search(html)
    if not answer:
        raise RuntimeError("no answer stream in /send's HTML")
    async with session.get(f"{base}/m/{answer.group(1)}/stream") as response:
        if response.status != 200:
            raise RuntimeError(f"stream answered {response.status}")
        if not await read_stream(response, result, started, is_relay=True):
            raise RuntimeError("stream ended without done")


async def direct_stream(session, fake_url, chunks, result):
    """The baseline: the same client reading the fake upstream's stream itself."""
    started = time.time()
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": f"{chunks}"}]}
    async with session.post(f"{fake_url}/compatible-mode/v1/chat/completions", json=body,
                            headers={"Authorization": "Bearer sk-bench"}) as response:
        if response.status != 200:
            raise RuntimeError(f"fake answered {response.status}")
        if not await read_stream(response, result, started, is_relay=False):
            raise RuntimeError("stream ended without [DONE]")


async def one(kind, session, url, chunks, delay):
    result = Result()
    await asyncio.sleep(delay)
    try:
        await asyncio.wait_for(kind(session, url, chunks, result), STREAM_TIMEOUT)
        if result.chunks != chunks:
            result.error = f"{result.chunks} of {chunks} chunks"
    except Exception as exc:  # counted and reported, never hidden
        result.error = f"{exc.__class__.__name__}: {exc}"
    return result


async def run_streams(is_relay, url, count, chunks, ramp, on_tick=None):
    """`count` streams started evenly over `ramp` seconds; returns their Results."""
    kind = relay_stream if is_relay else direct_stream
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=STREAM_TIMEOUT, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        if is_relay:
            await take_csrf_token(session, url)
        tasks = [asyncio.ensure_future(one(kind, session, url, chunks, ramp * i / count))
                 for i in range(count)]
        while on_tick and not all(t.done() for t in tasks):
            on_tick()
            await asyncio.wait(tasks, timeout=0.5)
        return await asyncio.gather(*tasks)


async def take_csrf_token(session, url):
    """Like the page: the session cookie, and the token htmx sends with every change."""
    async with session.get(f"{url}/settings") as response:
        page = await response.text()
    session.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)


def measure(is_relay, url, count, chunks, ramp=0.0, on_tick=None):
    return asyncio.run(run_streams(is_relay, url, count, chunks, ramp, on_tick))


def sequential(is_relay, url, times, chunks):
    """`times` single streams one after another (for time to first token)."""
    results = []
    for _ in range(times):
        results += measure(is_relay, url, 1, chunks)
    return results
