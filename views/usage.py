"""Usage (/usage): tokens per day and model, pictures per day."""
from flask import Blueprint, render_template, request

from services import usage

bp = Blueprint("usage", __name__)


@bp.get("/usage")
def page():
    days = request.args.get("days", type=int)
    if days not in usage.RANGES:
        days = usage.DEFAULT_DAYS
    return render_template("usage.html", days=days, ranges=usage.RANGES, **usage.report(days))
