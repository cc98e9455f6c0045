"""Markdown to HTML: only what Markdown makes gets through; never script, never htmx."""
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, clean, render
from xss import PAYLOADS

SAFE_SCHEMES = ("http:", "https:", "mailto:")

# Pieces that make Markdown and HTML constructs when strung together at random.
PIECES = ["<", ">", "</", "/>", "[", "]", "(", ")", "](", "<>", "!", "`", "```", "\n", "\n\n", " ",
          "\t", '"', "'", "=", "&", "&#x61;", "&#106;", "&amp;", "&lt;", ":", "//", "|", "---",
          "* ", "1. ", "> ", "#", "\\", "a", "x", "script", "javascript:", "data:", "vbscript:",
          "jav&#x61;script:", "img", "svg", "iframe", "src=", "href=", "onerror=", "onload=",
          "alert(1)", "hx-get=", "hx-on:click=", "data-hx-get=", "sse-connect=", "hx-trigger=load",
          "style=", "url(", "{{", "}}", "http://x.y/", "\x00", "\u202e", "中文"]


class Elements(HTMLParser):
    def __init__(self, html):
        super().__init__()
        self.found = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_only_markdown_output(html):
    for tag, attrs in Elements(html).found:
        assert tag in ALLOWED_TAGS, html
        for name, value in attrs:
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) | ({"rel"} if tag == "a" else set()), html
            if name == "href":
                url = "".join(c for c in value if c > " ").lower()  # as a browser reads a scheme
                assert url.startswith(SAFE_SCHEMES) or ":" not in url.split("/")[0], html


def test_htmx_sse_and_event_attributes_are_stripped():
    html = ('<div class="ok" hx-get="/x" hx-trigger="load" data-hx-get="/x" hx-on:click="alert(1)"'
            ' hx-on::after-request="alert(1)" sse-connect="/s" sse-swap="m" onclick="alert(1)">t</div>'
            '<a href="/c/1" hx-boost="true" hx-post="/send">a</a>')
    assert clean(html) == ('<div class="ok">t</div>'
                           '<a href="/c/1" rel="noopener noreferrer nofollow">a</a>')


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:alert(1)",
                                 "java\tscript:alert(1)", "data:text/html,x", "vbscript:x"])
def test_script_urls_are_stripped_from_links(url):
    assert clean(f'<a href="{url}">a</a>') == '<a rel="noopener noreferrer nofollow">a</a>'


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_renders_as_text_or_plain_markdown(payload):
    assert_only_markdown_output(render(payload))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=40).map("".join))
def test_any_text_renders_only_tags_and_links_that_markdown_makes(text):
    assert_only_markdown_output(render(text))


def test_raw_html_is_shown_as_text():
    assert render('<div hx-get="/x">hi</div>') == '<p>&lt;div hx-get="/x"&gt;hi&lt;/div&gt;</p>\n'
