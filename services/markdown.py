"""Markdown to safe HTML: code highlighted by Pygments, everything sanitised by nh3."""
import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

FORMATTER = HtmlFormatter(nowrap=True)

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


def render(text):
    return Markup(clean(MARKDOWN.render(text or "")))
