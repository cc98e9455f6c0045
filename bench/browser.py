"""The chat page as a first-time visitor gets it: bytes over the wire and load times in
Debian's headless chromium."""
import re
import statistics
import urllib.request

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync"]


def get(url):
    """Body bytes as sent (compressed if the server compresses), and the headers."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})  # Chromium's
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read(), response.headers


def page_weight(base, path="/"):
    """{url: (bytes sent, encoding)} for the page and the scripts and styles it loads."""
    html, headers = get(base + path)
    weights = {path: (len(html), headers.get("Content-Encoding", "none"))}
    text = urllib.request.urlopen(base + path, timeout=10).read().decode()
    # What a browser fetches on a first visit: not the manifest or the home-screen icon,
    # which Chromium asks for only when the page is installed.
    tags = [tag for tag in re.findall(r"<(?:script|link)[^>]+>", text)
            if 'rel="manifest"' not in tag and 'rel="apple-touch-icon"' not in tag]
    for source in re.findall(r'(?:src|href)="(/[^"]+)"', " ".join(tags)):
        body, headers = get(base + source)
        weights[source] = (len(body), headers.get("Content-Encoding", "none"))
    return weights


def load_times(url, repeat=10):
    """Median DOMContentLoaded and load (ms after navigation start), each visit in a new
    browser context (an empty cache)."""
    from playwright.sync_api import sync_playwright
    loaded, ready = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for n in range(repeat + 1):
            context = browser.new_context()
            page = context.new_page()
            page.goto(url, wait_until="load")
            page.wait_for_function("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
            timing = page.evaluate("""() => {
                const t = performance.getEntriesByType('navigation')[0];
                return [t.domContentLoadedEventEnd, t.loadEventEnd]; }""")
            if n:  # the first visit also starts the browser's own machinery
                ready.append(timing[0])
                loaded.append(timing[1])
            context.close()
        browser.close()
    return {"dom_content_loaded": statistics.median(ready), "load": statistics.median(loaded),
            "dcl_max": max(ready), "load_max": max(loaded)}
