from flask import render_template
from flask_htmx import HTMX

htmx = HTMX()


def page_or_fragment(page, fragment, **context):
    wants_fragment = htmx and not htmx.boosted and not htmx.history_restore_request
    return render_template(fragment if wants_fragment else page, **context)


def alert(message, status=422):
    """A sentence for the user in the page's alert area, whatever the request targeted."""
    headers = {"HX-Retarget": "#alerts", "HX-Reswap": "innerHTML"}
    return render_template("partials/alert.html", message=message), status, headers


def sse(event, html):
    lines = html.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    data = "".join(f"data: {line}\n" for line in lines)
    return f"event: {event}\n{data}\n"
