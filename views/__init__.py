from flask import abort, render_template
from flask_htmx import HTMX

htmx = HTMX()

MAX_ID = 2**63 - 1  # SQLite's largest integer; a bigger one cannot even be looked up


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
