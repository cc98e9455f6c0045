"""Stream measurements: the same asyncio client reads answers through Moyan and straight
from the fake upstream; each content chunk carries its send time, ⟨unix seconds⟩."""
import asyncio
import re
import time

import aiohttp

STAMP = re.compile(rb"\xe2\x9f\xa8(\d+\.\d+)\xe2\x9f\xa9")  # ⟨...⟩ in UTF-8
ANSWER = re.compile(r'sse-connect="/m/(\d+)/stream"')
STATUS = re.compile(rb'data-status="(\w+)"')
MODEL = "bench-stamp-20"
STREAM_TIMEOUT = 120  # seconds; no stream here should take more than a minute


class Result:
    """What one stream gave: per-chunk delays (s), time to first token (s), errors. A
    relayed stream that attaches late gets the chunks so far at once, in the snapshot (or
    all of them in the final answer): those have no delay."""

    def __init__(self, tag=""):
        self.tag = tag  # sent as X-Bench-Stream with both requests, for the access log
        self.delays = []
        self.first_token = None
        self.chunks = 0  # received live, each with its delay
        self.snapshot = None  # in the snapshot (relay): those generated before it attached
        self.saved = None  # in the final answer (relay)
        self.error = None
        self.status = None  # the answer's, as the `done` event shows it (relay)


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
                    result.saved = len(STAMP.findall(event))
                    status = STATUS.search(event)
                    result.status = status.group(1).decode() if status else "unknown"
                    return True
                if event.startswith(b"event: snapshot"):
                    result.snapshot = len(STAMP.findall(event))
                if event.startswith(b"event: content"):
                    note_stamps(result, event, received, started)
            else:
                if event.startswith(b"data: [DONE]"):
                    return True
                note_stamps(result, event, received, started)
    return False


async def relay_stream(session, base, chunks, result):
    """As a person does: open the chat page, post a message, then read its answer's event
    stream. The time to the first token counts from the post."""
    async with session.get(f"{base}/", headers={"X-Bench-Stream": result.tag}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"/ answered {response.status}")
    started = time.time()
    form = {"text": f"{chunks}", "conversation_id": "", "provider": "dashscope",
            "model": MODEL, "system_prompt": ""}
    tag = {"X-Bench-Stream": result.tag}
    async with session.post(f"{base}/send", data=form, headers={"HX-Request": "true", **tag}) as response:
        html = await response.text()
        if response.status != 200:
            raise RuntimeError(f"/send answered {response.status}")
    answer = ANSWER.search(html)
    if not answer:
        raise RuntimeError("no answer stream in /send's HTML")
    async with session.get(f"{base}/m/{answer.group(1)}/stream", headers=tag) as response:
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


def verdict(result, chunks):
    """None if the stream gave every chunk once, else what went wrong."""
    if result.saved is None:
        return None if result.chunks == chunks else f"{result.chunks} of {chunks} chunks"
    if result.status != "done" or result.saved != chunks:
        return f"shown {result.status} with {result.saved} of {chunks} chunks"
    if result.snapshot is not None and result.snapshot + result.chunks != chunks:
        return f"{result.snapshot} in the snapshot + {result.chunks} live of {chunks} chunks"
    return None


async def one(kind, session, url, chunks, delay, tag, timeout):
    result = Result(tag)
    await asyncio.sleep(delay)
    try:
        await asyncio.wait_for(kind(session, url, chunks, result), timeout)
        result.error = verdict(result, chunks)
    except Exception as exc:  # counted and reported, never hidden
        result.error = f"{exc.__class__.__name__}: {str(exc) or f'not done in {timeout} s'}"
    return result


async def run_streams(is_relay, url, count, chunks, ramp, on_tick=None, fresh=False,
                      timeout=STREAM_TIMEOUT):
    """`count` streams started evenly over `ramp` seconds; returns their Results. With
    `fresh`, every request opens a new connection (none is kept alive for the next); a
    stream not done `timeout` seconds after it started is an error."""
    kind = relay_stream if is_relay else direct_stream
    connector = aiohttp.TCPConnector(limit=0, force_close=fresh)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=30),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        if is_relay:
            await take_csrf_token(session, url)
        run = time.monotonic_ns()
        tasks = [asyncio.ensure_future(one(kind, session, url, chunks, ramp * i / count, f"{run}.{i}", timeout))
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


def measure(is_relay, url, count, chunks, ramp=0.0, on_tick=None, fresh=False, timeout=STREAM_TIMEOUT):
    return asyncio.run(run_streams(is_relay, url, count, chunks, ramp, on_tick, fresh, timeout))


def sequential(is_relay, url, times, chunks):
    """`times` single streams one after another (for time to first token)."""
    results = []
    for _ in range(times):
        results += measure(is_relay, url, 1, chunks)
    return results
