"""Markdown to safe HTML: code highlighted by Pygments, everything sanitised by nh3.

Rendering takes up to ~16 µs a character (text made of `![`, say), and with one gevent
worker nothing may hold the process for long: a long text is rendered by a child process
(`python services/markdown.py`), which the worker waits for without blocking anyone.
"""
import logging
import subprocess
import sys

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

log = logging.getLogger(__name__)

FORMATTER = HtmlFormatter(nowrap=True)
IN_PROCESS_LIMIT = 6_000  # characters: at most about 100 ms here, whatever they are
CHILD_TIMEOUT = 30  # seconds

ALLOWED_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
                "code", "pre", "span", "div", "blockquote", "ul", "ol", "li", "a", "table",
                "thead", "tbody", "tr", "th", "td"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "code": {"class"},
                      "pre": {"class", "data-lang"}, "div": {"class"},
                      "ol": {"start"}}


def highlight_code(code, language, attrs):
    try:
        lexer = get_lexer_by_name(language.split()[0]) if language else None
    except ClassNotFound:
        lexer = None
    body = highlight(code, lexer, FORMATTER) if lexer else escape(code)
    label = escape(language.split()[0]) if language else "text"
    return (f'<pre class="highlight" data-lang="{label}"><code class="language-{label}">'
            f"{body}</code></pre>")


# Raw HTML in the source is shown as text, never passed through.
MARKDOWN = (MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": highlight_code})
            .enable(["table", "strikethrough"]))


def clean(html):
    """Only the tags and attributes Markdown makes: no event handlers, no script URLs, and no
    hx-*/sse-* attributes, which htmx would act on once the HTML is in the page."""
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


def render_here(text):
    return clean(MARKDOWN.render(text))


def render(text):
    text = text or ""
    if len(text) <= IN_PROCESS_LIMIT:
        return Markup(render_here(text))
    try:
        child = subprocess.run([sys.executable, __file__], input=text.encode(), capture_output=True,
                               timeout=CHILD_TIMEOUT, check=True)
        return Markup(child.stdout.decode())
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("a long text was not rendered as Markdown: %s", exc.__class__.__name__)
        return Markup('<div class="plain-text">') + escape(text) + Markup("</div>")


if __name__ == "__main__":  # the child process: Markdown on stdin, HTML on stdout
    sys.stdout.write(render_here(sys.stdin.buffer.read().decode()))
