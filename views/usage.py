"""Usage (/usage): tokens, pictures and costs per day, model and conversation, from the
usage ledger; the price table and monthly budgets (saved from the settings page)."""
import math

from flask import Blueprint, render_template, request
from flask_babel import gettext

from models import Setting, UsageRecord
from services import costs, usage
from services import settings as provider_settings
from views import alert

bp = Blueprint("usage", __name__)

MAX_PRICES = 20_000


@bp.get("/usage")
def page():
    days = request.args.get("days", type=int)
    if days not in usage.RANGES:
        days = usage.DEFAULT_DAYS
    return render_template("usage.html", days=days, ranges=usage.RANGES, **usage.report(days))


@bp.post("/usage/settings")
def save_settings():
    """The DashScope price table and the monthly budgets."""
    prices = request.form.get("prices", "").strip()
    if len(prices) > MAX_PRICES:
        return alert(gettext("价格表太长了。"))
    try:
        costs.parse_prices(prices)
    except costs.BadPrices as exc:
        return alert(str(exc))
    budgets = {}
    for provider, key in costs.BUDGET_KEYS.items():
        value = request.form.get(f"{provider}_budget", "").strip()
        try:
            is_positive = bool(value) and 0 < float(value) < math.inf
        except ValueError:
            is_positive = False
        if value and not is_positive:
            return alert(gettext("每月预算应是一个正数，或留空表示不设。"))
        budgets[key] = value or None  # as typed: 0.00001 stays 0.00001
    Setting.set_value(costs.PRICES_KEY, None if prices == costs.DEFAULT_PRICES.strip() else prices + "\n")
    for key, value in budgets.items():
        Setting.set_value(key, value)
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
