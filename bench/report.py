"""docs/PERFORMANCE.md from the figures of one `make bench` run."""
import os

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
    at500 = levels[500]["relay"]
    rows = [
        ("relay delay added per chunk, 100 streams (median / p99)", "≤ 2 / ≤ 10 ms",
         f"{added(levels, 100, 'median'):.2f} / {added(levels, 100, 'p99'):.2f} ms",
         added(levels, 100, "median") <= 2 and added(levels, 100, "p99") <= 10),
        ("500 streams: errors, p99 added", "0, ≤ 50 ms",
         f"{len(at500['errors'])}, {added(levels, 500, 'p99'):.1f} ms",
         not at500["errors"] and added(levels, 500, "p99") <= 50),
        ("time to first token added, 1 stream (median)", "≤ 15 ms", f"{first_added:.1f} ms",
         first_added <= 15),
        ("chat page first load, bytes over the wire (HTML + JS + CSS)", "≤ 60 KB",
         f"{weight / KB:.1f} KB", weight <= 60 * KB),
        ("chat page in headless chromium, DOMContentLoaded / load (median)", "≤ 150 / ≤ 300 ms",
         f"{big['browser']['dom_content_loaded']:.0f} / {big['browser']['load']:.0f} ms",
         big["browser"]["dom_content_loaded"] <= 150 and big["browser"]["load"] <= 300),
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
        ("server memory (RSS, all processes): idle / 500 streams", "≤ 80 / ≤ 250 MB",
         f"{s['idle_rss'] / MB:.0f} / {at500['peak_rss'] / MB:.0f} MB",
         s["idle_rss"] <= 80 * MB and at500["peak_rss"] <= 250 * MB),
    ]
    lines = ["| measurement | target | this run | |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {target} | {value} | {ok(is_met)} |" for name, target, value, is_met in rows]
    lines.append(f"| server CPU time per relayed chunk, 100 / 500 streams | reported | "
                 f"{levels[100]['relay']['cpu_per_chunk']:.0f} / {at500['cpu_per_chunk']:.0f} µs | |")
    return "\n".join(lines)


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
            f"{ratio(r['median'], d['median'])} | {len(r['errors'])} | {r['cpu_per_chunk']:.0f} µs | "
            f"{r['fake_cpu_per_chunk']:.0f} µs | {r['client_cpu_per_chunk']:.0f} µs | "
            f"{r['peak_rss'] / MB:.0f} MB |")
    errors = [e for level in f["streams"]["levels"].values() for e in level["relay"]["errors"]]
    if errors:
        lines.append(f"\nFirst errors: {'; '.join(sorted(set(errors))[:5])}")
    return "\n".join(lines)


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
*Direct* is the same client reading the fake itself; *relay* is POST `/send`, then
`/m/N/stream` through Moyan. Streams start spread over up to 5 s. Delays in ms; CPU in µs of
CPU time per relayed chunk (everything the process did during the run, divided by chunks).

{stream_table(f)}

Time to first token, {len(first['relay'].get('errors', [])) or 'no'} errors, median of
{first['runs']} single streams (from sending the question to the first token in hand):
direct {first['direct']['first_token']:.1f} ms, through Moyan {first['relay']['first_token']:.1f} ms,
added {first['relay']['first_token'] - first['direct']['first_token']:.1f} ms
(the fake waits 50 ms before its first token in both).

Server memory idle: {s['idle_rss'] / MB:.0f} MB (gunicorn master + worker).

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
