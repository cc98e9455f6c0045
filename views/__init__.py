import gzip
from urllib.parse import unquote, urlsplit

from flask import abort, render_template, request, url_for
from flask_babel import lazy_gettext
from flask_htmx import HTMX, make_response
from markupsafe import Markup

from models import Message
from services.markdown import render as render_markdown

htmx = HTMX()


MAX_ID = 2**31 - 1  # the largest id column (PostgreSQL's integer); a bigger id cannot be looked up
NUL_REFUSED = lazy_gettext("输入里有空字符（NUL），无法保存。请删掉它后重试。")


def to_id(value):
    """`value` as a row id, or None when it cannot be one."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def get_or_404(model, value):
    row_id = to_id(value)
    return (model.get_or_none(model.id == row_id) if row_id else None) or abort(404)


def safe_next(value):
    """`value` when it is a path inside Moyan, else the chat page: a "next" never leads to
    another site. Browsers read //x, /\\x and /<tab>/x as another host, and a control
    character cannot go into a Location header."""
    if not value.startswith("/") or value.startswith("//") or not is_plain(value):
        return url_for("chat.index")
    parts = urlsplit(value)
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or path.startswith("//") or not is_plain(path):
        return url_for("chat.index")
    return value


def is_plain(text):
    """No backslash, whitespace or control character."""
    return text.isprintable() and " " not in text and "\\" not in text


def refuse_nul():
    """before_request: text with a NUL character cannot be stored (PostgreSQL refuses it);
    say so instead of failing later."""
    values = list(request.args.values()) + (list(request.form.values()) if request.method == "POST" else [])
    if any("\x00" in value for value in values):
        return alert(NUL_REFUSED)


THEMES = ("system", "light", "dark")


def current_theme():
    """The colour theme the person picked (a cookie set by static/app.js), else the system's."""
    theme = request.cookies.get("theme")
    return theme if theme in THEMES else "system"


def page_or_fragment(page, fragment, **context):
    wants_fragment = htmx and not htmx.boosted and not htmx.history_restore_request
    return render_template(fragment if wants_fragment else page, **context)


def alert(message, status=422):
    """A sentence for the user in the page's alert area, whatever the request targeted."""
    return make_response(render_template("partials/alert.html", message=message), status,
                         retarget="#alerts", reswap="innerHTML")


def first_error(errors):
    """The sentence of the first wrong field: the alert area shows one."""
    return next(iter(errors.values()))


def answer_html(message):
    """An answer's text as HTML: rendered once when it was saved; rows from before that (or
    imported) are rendered now and kept."""
    if message.content_html is None:
        message.content_html = render_markdown(message.content)
        Message.update(content_html=message.content_html).where(Message.id == message.id).execute()
    return Markup(message.content_html)


COMPRESSIBLE = {"text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml",
                "application/manifest+json"}
_compressed_static = {}  # (path, etag) -> gzip bytes: static files are compressed once


def compress(response):
    """Gzip pages, fragments and static text files for browsers that accept it; never
    event streams (each event must go out as it comes)."""
    if (response.status_code != 200 or response.mimetype not in COMPRESSIBLE
            or "gzip" not in request.headers.get("Accept-Encoding", "")
            or "Content-Encoding" in response.headers):
        return response
    response.direct_passthrough = False  # static files: read them here
    key = (request.path, response.get_etag()[0]) if request.endpoint == "static" else None
    body = _compressed_static.get(key) if key else None
    if body is None:
        # Pages at level 3 (a third of level 6's time, a few per cent bigger); static
        # files, compressed once, at 9.
        body = gzip.compress(response.get_data(), compresslevel=9 if key else 3)
        if key:
            _compressed_static[key] = body
    response.set_data(body)
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response
