"""Usage (/usage): tokens, pictures and costs per day, model and conversation, from the
usage ledger; the price table and monthly budgets (saved from the settings page)."""
from flask import Blueprint, render_template, request

from models import UsageRecord
from services import costs, usage
from services import settings as provider_settings
from views import alert

bp = Blueprint("usage", __name__)


@bp.get("/usage")
def page():
    days = request.args.get("days", type=int)
    if days not in usage.RANGES:
        days = usage.DEFAULT_DAYS
    return render_template("usage.html", days=days, ranges=usage.RANGES, **usage.report(days))


@bp.post("/usage/settings")
def save_settings():
    """The DashScope price table and the monthly budgets."""
    error = costs.save_settings(request.form)
    if error:
        return alert(error)
    return render_template("partials/cost_settings.html", saved=True)


@bp.app_template_global()
def cost_settings():
    """What partials/cost_settings.html shows."""
    saved = provider_settings.saved_values()
    return {"price_text": costs.price_text(), "budgets": {p: saved.get(key, "") for p, key in costs.BUDGET_KEYS.items()},
            "currencies": costs.CURRENCIES}


@bp.app_template_global()
def provider_label(name):
    return provider_settings.PROVIDERS[name]


@bp.app_template_global()
def budget_state(provider):
    return costs.budget_state(provider)


@bp.app_template_global()
def painting_usage(image_task_id):
    return UsageRecord.get_or_none(UsageRecord.image_task_id == image_task_id)


@bp.app_template_filter("cost")
def cost_filter(value, currency):
    return costs.format_cost(value, currency)
