"""What the page loads is ours: vendored htmx, compiled CSS, nothing from another host."""
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


def test_htmx_2_and_its_sse_extension_are_vendored():
    with open(os.path.join(ROOT, "static", "htmx.min.js")) as f:
        assert 'version:"2.' in f.read()
    with open(os.path.join(ROOT, "static", "sse.min.js")) as f:
        assert "sse-connect" in f.read()


def test_pages_and_static_files_are_sent_gzipped_to_browsers_that_accept_it(client):
    import gzip
    for url in ("/", "/static/htmx.min.js", "/static/app.css"):
        response = client.get(url, headers={"Accept-Encoding": "gzip, br"})
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["Vary"]
        plain = client.get(url).get_data()
        assert gzip.decompress(response.get_data()) == plain
    assert "Content-Encoding" not in client.get("/static/htmx.min.js").headers
