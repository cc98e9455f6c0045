"""docs/PERFORMANCE.md from the figures of one `make bench` run."""
import os
import re

NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
KB = 1024
MB = 2**20


def ok(is_met):
    return "met" if is_met else "**missed**"


def added(levels, count, key):
    level = levels[count]
    return level["relay"][key] - level["direct"][key]


def ratio(relay, direct):
    return f"{relay / direct:.1f}×" if direct > 0 else "–"


def targets(f):
    s, h = f["streams"], f["history"]
    levels, big = s["levels"], h[max(h)]
    first = f["streams"]["first_token"]
    first_added = first["relay"]["first_token"] - first["direct"]["first_token"]
    weight = sum(size for size, _ in big["weight"].values())
    g = f["gallery"]
    at1000 = levels[1000]["relay"]
    first100 = added(levels, 100, "first_token")
    cpu = {n: levels[n]["relay"]["cpu_per_chunk"] for n in (500, 1000)}
    p99 = {n: added(levels, n, "p99") for n in (100, 500, 1000)}
    errors = sum(len(levels[n]["relay"]["errors"]) for n in (100, 500, 1000))
    rows = [
        ("server CPU per relayed token, 500 / 1,000 answers (page and /send included)", "≤ 40 µs",
         f"{cpu[500]:.0f} / {cpu[1000]:.0f} µs", max(cpu.values()) <= 40),
        ("token delay added at p99, 100 / 500 / 1,000 answers", "≤ 10 / 50 / 250 ms",
         f"{p99[100]:.1f} / {p99[500]:.1f} / {p99[1000]:.1f} ms",
         p99[100] <= 10 and p99[500] <= 50 and p99[1000] <= 250),
        ("… tokens lost or streams failed, 100 / 500 / 1,000 answers", "0", str(errors), errors == 0),
        ("first token added, 1 answer / 100 answers (median)", "≤ 10 / ≤ 50 ms",
         f"{first_added:.1f} / {first100:.1f} ms", first_added <= 10 and first100 <= 50),
        ("chat page first load, bytes over the wire (HTML + JS + CSS)", "≤ 40 KB",
         f"{weight / KB:.1f} KB", weight <= 40 * KB),
        ("chat page in headless chromium, DOMContentLoaded (median)", "≤ 100 ms",
         f"{big['browser']['dom_content_loaded']:.0f} ms", big["browser"]["dom_content_loaded"] <= 100),
        ("server memory (RSS, all processes) idle", "≤ 80 MB", f"{s['idle_rss'] / MB:.0f} MB",
         s["idle_rss"] <= 80 * MB),
        ("10k conversations / 100k messages: chat page (median)", "≤ 50 ms",
         f"{big['chat_page']['median']:.1f} ms", big["chat_page"]["median"] <= 50),
        ("… sidebar page", "≤ 50 ms", f"{big['sidebar']['median']:.1f} ms", big["sidebar"]["median"] <= 50),
        ("… opening a 500-message conversation (whole page)", "≤ 100 ms",
         f"{big['open_long_page']['median']:.1f} ms", big["open_long_page"]["median"] <= 100),
        ("… full-text search", "≤ 100 ms", f"{big['search']['median']:.1f} ms",
         big["search"]["median"] <= 100),
        ("gallery, 5,000 images: first page / next page", "≤ 50 ms each",
         f"{g['first_page']['median']:.1f} / {g['next_page']['median']:.1f} ms",
         max(g["first_page"]["median"], g["next_page"]["median"]) <= 50),
        ("thumbnail size (largest)", "≤ 40 KB", f"{max(g['thumbnails']) / KB:.1f} KB",
         max(g["thumbnails"]) <= 40 * KB),
        ("server memory (RSS, all processes) at 1,000 answers", "reported", f"{at1000['peak_rss'] / MB:.0f} MB",
         True),
    ]
    lines = ["| measurement | target | this run | |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {target} | {value} | {ok(is_met)} |" for name, target, value, is_met in rows]
    return "\n".join(lines)


def late(relay):
    """Streams that attached after their first chunks (which came in the snapshot)."""
    return f" ({relay['late']} late)" if relay.get("late") else ""


def stream_table(f):
    lines = ["| streams | chunks relayed | direct median / p99 | relay median / p99 | added median / p99 "
             "| ratio (median) | errors | server CPU / chunk | fake CPU / chunk | client CPU / chunk "
             "| server RSS peak |",
             "| ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for count, level in sorted(f["streams"]["levels"].items()):
        d, r = level["direct"], level["relay"]
        lines.append(
            f"| {count} | {r['chunks']} | {d['median']:.2f} / {d['p99']:.2f} ms | {r['median']:.2f} / "
            f"{r['p99']:.2f} ms | {r['median'] - d['median']:.2f} / {r['p99'] - d['p99']:.2f} ms | "
            f"{ratio(r['median'], d['median'])} | {len(r['errors'])}{late(r)} | {r['cpu_per_chunk']:.0f} µs | "
            f"{r['fake_cpu_per_chunk']:.0f} µs | {r['client_cpu_per_chunk']:.0f} µs | "
            f"{r['peak_rss'] / MB:.0f} MB |")
    errors = [e for level in f["streams"]["levels"].values() for e in level["relay"]["errors"]]
    if errors:
        lines.append(f"\nFirst errors: {'; '.join(sorted(set(errors))[:5])}")
    return "\n".join(lines)


def live_share(relay, streams, chunks_each):
    """The share of these streams' chunks that came live (each with its delay)."""
    return relay["chunks"] / (streams * chunks_each) if streams else 0


def delays(relay, direct, streams, chunks_each):
    """Median / p99 delay of `relay` (minus `direct`'s, if given), with the share of chunks
    it covers when not nearly all; none if under a tenth."""
    share = live_share(relay, streams, chunks_each)
    if share < 0.1:
        return f"– ({relay['chunks']:,} live)" if relay["chunks"] else "–"
    base = direct or {"median": 0, "p99": 0}
    text = f"{relay['median'] - base['median']:.2f} / {relay['p99'] - base['p99']:.2f}"
    return text if share >= 0.9 else f"{text} ({share:.0%} live)"


def cpu_per_chunk(relay):
    """Server CPU seconds per chunk delivered, if most chunks came (else None)."""
    if relay["delivered"] < relay["streams"] * relay["chunks_each"] / 2:
        return None
    return relay["cpu_seconds"] / relay["delivered"]


def per_chunk(seconds, relay):
    """CPU time per chunk delivered, unless most chunks never came."""
    if seconds is None:
        return "–"
    if cpu_per_chunk(relay) is None:
        return f"{seconds:.0f} s for {relay['delivered']:,} chunks"
    return f"{seconds / relay['delivered'] * 1e6:.0f} µs"


def scale_rows(r, d):
    """The cells of one configuration (relay `r`) at one number of streams (direct `d`)."""
    unknown = r["streams"] - r["cross_count"] - r["same_count"]
    each = r["chunks_each"]
    return {
        "streams held to the end / started": f"{r['held']} / {r['streams']}",
        "errors (kinds below the table)": str(len(r["errors"])),
        "answers whose generation thread crashed": str(r["crashed"]),
        "streams attached late / chunks they got in the snapshot": f"{r['late']} / {r['late_chunks']:,}",
        "streams across workers (through Redis) / same worker / unknown":
            f"{r['cross_count']} / {r['same_count']} / {unknown}",
        "relay median / p99": delays(r, None, r["streams"], each),
        "**added per chunk**, median / p99": f"**{delays(r, d, r['streams'], each)}**",
        "… same-worker streams only": delays(r["same"], d, r["same_count"], each),
        "… cross-worker streams only": delays(r["cross"], d, r["cross_count"], each),
        "server CPU / chunk delivered (gunicorn master + workers)": per_chunk(r["cpu_seconds"], r),
        "PostgreSQL + Redis CPU / chunk delivered": per_chunk(r["helper_cpu_seconds"], r),
        "server RSS peak (gunicorn master + workers)": f"{r['peak_rss'] / MB:.0f} MB",
    }


def counted(counts, limit=3):
    common = sorted(counts.items(), key=lambda item: -item[1])[:limit]
    return ", ".join(f"`{text[:140]}` ×{count}" for text, count in common)


def problems(scale, columns):
    """Per column: the client's errors by kind, and the exceptions in the server log."""
    lines = []
    for count, name in columns:
        relay = scale[name][count]
        kinds = {}
        for error in relay["errors"]:
            kind = re.sub(r"\d+", "N", error)
            kinds[kind] = kinds.get(kind, 0) + 1
        parts = [f"client: {counted(kinds)}"] if kinds else []
        parts += [f"server log: {counted(relay['exceptions'])}"] if relay["exceptions"] else []
        if parts:
            lines.append(f"- {count} streams, {name}: " + "; ".join(parts))
    return "\n".join(lines)


def scale_table(scale):
    """Rows: measurements; columns: each number of streams, configuration A then B."""
    names = [name for name in scale if name != "direct"]
    columns = [(count, name) for count in sorted(scale["direct"]) for name in names]
    cells = {(count, name): scale_rows(scale[name][count], scale["direct"][count]) for count, name in columns}
    lines = ["| delays in ms | " + " | ".join(f"{count} streams, {name}" for count, name in columns) + " |",
             "| --- |" + " ---: |" * len(columns),
             "| direct median / p99 (baseline) | " + " | ".join(
                 f"{scale['direct'][count]['median']:.2f} / {scale['direct'][count]['p99']:.2f}"
                 for count, _ in columns) + " |"]
    for row in cells[columns[0]]:
        lines.append(f"| {row} | " + " | ".join(cells[column][row] for column in columns) + " |")
    errors = problems(scale, columns)
    return "\n".join(lines) + (f"\n\nErrors, by kind (numbers as N):\n\n{errors}" if errors else "")


def scale_reading(scale, cores):
    """A few sentences on the scale-out figures of this run."""
    counts = sorted(scale["direct"])
    a, b = scale["A"], scale["B"]
    costs = {n: (cpu_per_chunk(a[n]), cpu_per_chunk(b[n])) for n in counts}
    ratios = {n: cost_b / cost_a for n, (cost_a, cost_b) in costs.items() if cost_a and cost_b}
    text = [(f"On this {cores}-core machine the load client, the fake upstream, PostgreSQL, Redis and "
             "Moyan share the cores, so B cannot show what a second core buys: its two workers take "
             "their CPU from the same cores as everything else. It shows the cost of scaling out.")]
    if ratios:
        text.append("Server CPU per chunk delivered, B over A: "
                    + ", ".join(f"{ratio:.1f}× at {n} streams" for n, ratio in ratios.items())
                    + " (at few streams the idle work of each process weighs more), PostgreSQL and "
                    "Redis coming on top"
                    + ("; so on these cores B runs out of CPU at fewer streams than A."
                       if min(ratios.values()) > 1 else "."))
    low = b[counts[0]]
    if (live_share(low["cross"], low["cross_count"], low["chunks_each"]) >= 0.9
            and live_share(low["same"], low["same_count"], low["chunks_each"]) >= 0.9):
        base = scale["direct"][counts[0]]["median"]
        text.append(f"At {counts[0]} streams, reading a chunk through Redis on the other worker added "
                    f"{low['cross']['median'] - base:.2f} ms (median), reading it from the generating "
                    f"worker's memory {low['same']['median'] - base:.2f} ms.")
    lost = [f"{n} streams: A held {a[n]['held']}, B {b[n]['held']}" for n in counts
            if a[n]["held"] < n or b[n]["held"] < n]
    if lost:
        text.append("Streams not held to the end (" + "; ".join(lost) + ") are listed by kind "
                    "under the table, with the exceptions in the server log during the run.")
    return " ".join(text)


def history_table(f):
    def cell(m):
        return f"{m['median']:.1f} / {m['p95']:.1f}"
    lines = ["| messages (conversations) | chat page | sidebar | open 500-message conversation "
             "(fragment / whole page) | search | chromium DOMContentLoaded / load |",
             "| ---: | --- | --- | --- | --- | --- |"]
    for count, h in sorted(f["history"].items()):
        b = h["browser"]
        lines.append(f"| {count:,} ({count // 10:,}) | {cell(h['chat_page'])} | {cell(h['sidebar'])} | "
                     f"{cell(h['open_long'])} / {cell(h['open_long_page'])} | {cell(h['search'])} | "
                     f"{b['dom_content_loaded']:.0f} / {b['load']:.0f} |")
    return "\n".join(lines)


def weight_table(f):
    weights = f["history"][max(f["history"])]["weight"]
    lines = ["| file | bytes sent | encoding |", "| --- | ---: | --- |"]
    lines += [f"| `{url}` | {size:,} | {encoding} |" for url, (size, encoding) in weights.items()]
    lines.append(f"| **total** | **{sum(s for s, _ in weights.values()):,}** | |")
    return "\n".join(lines)


def render(f):
    m, s, g = f["machine"], f["streams"], f["gallery"]
    first = s["first_token"]
    notes = open(NOTES, encoding="utf-8").read() if os.path.exists(NOTES) else ""
    return f"""# Performance

Written by `make bench` ({f['date']}, {f['minutes']:.1f} minutes); do not edit by hand —
the notes at the end come from `bench/notes.md`.

## Machine

{m['cpu']}, {m['cores']} cores, {m['memory_mb']:,} MB RAM; {m['os']} (kernel {m['kernel']}), Python
{m['python']}. Load average before the run {f['load_before'][0]:.2f}, after {f['load_after'][0]:.2f}
(1 min): the machine is shared, so every latency stands next to a baseline from the same run.
The load client (aiohttp), the fake upstream (threads, own process) and Moyan (gunicorn, one
gevent worker) all share these {m['cores']} cores.

## Targets

{targets(f)}

## Streams

Each stream is {s['levels'][1]['relay']['chunks']} chunks at 20 a second (the fake's `bench-stamp-20`);
each chunk carries its send time and the client computes the delay from what it receives.
*Direct* is the same client reading the fake itself; *relay* is what a person's browser does
through Moyan: GET `/` (the chat page), POST `/send`, then `/m/N/stream`. Streams start spread
over up to 5 s. Delays in ms; CPU in µs of CPU time per token delivered (everything the server
processes did during the run, pages and `/send` included, divided by the tokens delivered,
live or in a snapshot).
A stream counted *late* attached after its answer's first chunks (its `/send` came back
slowly): it got them at once in the `snapshot` event, so they have no delay of their own. An
error is a stream that failed, lost a chunk or ended with its answer shown other than done.

{stream_table(f)}

Time to first token, {len(first['relay'].get('errors', [])) or 'no'} errors, median of
{first['runs']} single streams (from sending the question to the first token in hand):
direct {first['direct']['first_token']:.1f} ms, through Moyan {first['relay']['first_token']:.1f} ms,
added {first['relay']['first_token'] - first['direct']['first_token']:.1f} ms
(the fake waits 50 ms before its first token in both).

Server memory idle: {s['idle_rss'] / MB:.0f} MB (gunicorn master + worker).

## Scale-out: one worker, and two workers over Redis

**A** is `make run`: one gevent worker, SQLite, no Redis. **B** is `MOYAN_WORKERS=2` (one
port, two gevent workers) over a PostgreSQL and a Redis started for the run by
`tests/servers.py` (PostgreSQL takes at most 200 connections). Both get the streams above
(same chunks, same ramp), except that every request opens a new connection and that a stream
not done {f['scale_timeout']} s after it started is an error. The two workers accept from
one shared socket, so either may take a stream's `/send` and either its `/m/N/stream`. The
access log names the worker of each request, so each stream of B counts as *same-worker*
(its pieces come from the generating worker's memory, as in A, though B writes every piece
to Redis as well) or *cross-worker* (the other worker reads them from the Redis stream);
*unknown* ones did not get both requests through. The direct baselines are those of the
Streams table above. Delays are those of the chunks that came live: when that is under 90 %
of the chunks (the rest came in snapshots, or never), the share is given, and under 10 % no
delay is. CPU is all the work of the processes during the run divided by the chunks
delivered (live or in a snapshot); RSS adds up the processes, so the pages the workers share
after the fork count twice.

{scale_table(f['scale'])}

{scale_reading(f['scale'], m['cores'])}

## History

Median / p95 response time in ms (20 requests over a kept-alive connection on 127.0.0.1,
so this is server time plus well under a millisecond). Messages are spread over
messages/10 conversations; one conversation holds 500. The sidebar and search are the
htmx fragments `/conversations` and `/conversations?q=…`.

{history_table(f)}

## Gallery

5,000 images: first page {g['first_page']['median']:.1f} / {g['first_page']['p95']:.1f} ms,
next page {g['next_page']['median']:.1f} / {g['next_page']['p95']:.1f} ms (median / p95).
Thumbnails made by the app's own `save_image` from {len(g['thumbnails'])} 1024×1024 pictures:
{', '.join(f'{t / KB:.1f}' for t in g['thumbnails'])} KB.

## Chat page weight (first visit)

{weight_table(f)}

{notes}"""
