"""What the page loads is ours: vendored htmx, compiled CSS, nothing from another host."""
import gzip
import hashlib
import os
import re
import subprocess
import sys

from helpers import ROOT

TAILWIND = os.path.join(os.path.dirname(sys.executable), "tailwindcss")


def test_the_committed_css_is_what_make_css_builds(tmp_path):
    out = tmp_path / "app.css"
    subprocess.run([TAILWIND, "-i", "static/src/app.css", "-o", str(out), "--minify"],
                   cwd=ROOT, check=True, capture_output=True)
    with open(os.path.join(ROOT, "static", "app.css")) as committed:
        assert committed.read() == out.read_text(), "static/app.css is stale: run `make css`"


def test_pages_load_only_local_scripts_and_styles(client):
    for url in ("/", "/settings"):
        html = client.get(url).text
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/static/") for s in sources), sources
        for source in sources:
            assert client.get(source).status_code == 200


# htmx-ext-sse 2.2.4's dist/sse.min.js from npm, byte for byte; its file name says the version.
SSE_SHA256 = "98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136"


def test_htmx_2_and_its_sse_extension_are_vendored(client):
    with open(os.path.join(ROOT, "static", "htmx.min.js")) as f:
        assert 'version:"2.' in f.read()
    with open(os.path.join(ROOT, "static", "sse-2.2.4.min.js"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == SSE_SHA256
    assert "/static/sse-2.2.4.min.js" in client.get("/").text


BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium asks for


def test_pages_and_static_files_are_sent_gzipped_to_clients_that_accept_it(client):
    for url in ("/", "/static/htmx.min.js", "/static/app.css"):
        response = client.get(url, headers={"Accept-Encoding": "gzip, br"})
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["Vary"]
        plain = client.get(url).get_data()
        assert gzip.decompress(response.get_data()) == plain
    assert "Content-Encoding" not in client.get("/static/htmx.min.js").headers


def test_browsers_get_pages_gzipped_and_static_files_gzipped_once_at_level_9(client):
    assert client.get("/", headers=BROWSER).headers["Content-Encoding"] == "gzip"
    for name in ("htmx.min.js", "app.css", "app.js"):
        response = client.get("/static/" + name, headers=BROWSER)
        assert response.headers["Content-Encoding"] == "gzip", "static/*.gz missing: run `make install`"
        with open(os.path.join(ROOT, "static", name), "rb") as f:
            plain = f.read()
        assert gzip.decompress(response.get_data()) == plain
        assert len(response.get_data()) <= len(gzip.compress(plain, compresslevel=9)) + len(name) + 1
        assert response.headers["X-Content-Type-Options"] == "nosniff"