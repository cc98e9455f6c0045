"""The usage page's numbers, read from the usage ledger (one record per upstream call):
totals and costs per model, day and conversation, and bar charts laid out for inline SVG."""
import datetime
import math

from babel.dates import format_skeleton
from flask_babel import format_number, get_locale, gettext

from models import Conversation, UsageRecord
from services.costs import SYMBOLS, format_cost

RANGES = (7, 30, 90)
DEFAULT_DAYS = 30
# Tailwind's teal, amber, indigo, rose, lime, sky, purple and stone 600/700: readable on white.
PALETTE = ("#0f766e", "#d97706", "#4f46e5", "#e11d48", "#65a30d", "#0284c7", "#9333ea", "#78716c")
WIDTH, HEIGHT = 600, 280
LEFT, RIGHT, TOP, BOTTOM = 52, 24, 12, 32  # room for the tick labels and the dates
MAX_DATE_LABELS = 7


def report(days):
    """Totals, costs and charts for the last `days` days, today included."""
    today = datetime.date.today()
    dates = [today - datetime.timedelta(days=n) for n in range(days - 1, -1, -1)]
    since = datetime.datetime.combine(dates[0], datetime.time.min)
    rows = UsageRecord.per_day(since)
    tokens = [row for row in rows if row["total_tokens"]]
    images = [row for row in rows if row["images"]]
    token_totals = totals(tokens, ("calls", "prompt_tokens", "completion_tokens", "total_tokens"))
    image_totals = totals(images, ("images",))
    add_costs(token_totals, tokens)
    add_costs(image_totals, images)
    return {"token_totals": token_totals, "token_chart": chart(dates, tokens, token_totals, "tokens"),
            "image_totals": image_totals, "image_chart": chart(dates, images, image_totals, gettext("张")),
            "cost_days": cost_per_day(rows), "conversations": per_conversation(since),
            "imported": imported(since)}


def add_costs(model_totals, rows):
    """Each model's cost (None when some of its calls had no price) and the totals per currency."""
    sums, unpriced = {}, set()
    for row in rows:
        name = model_name(row)
        if row["cost"] is None:
            unpriced.add(name)
            continue
        key = (name, row["currency"])
        sums[key] = sums.get(key, 0) + row["cost"]
    for m in model_totals["models"]:
        priced = [(currency, value) for (name, currency), value in sums.items() if name == m["model"]]
        m["cost"] = " + ".join(format_cost(value, currency) for currency, value in priced)
        m["is_unpriced"] = m["model"] in unpriced
    model_totals["overall"]["cost"] = money(sums.items())


def money(items):
    """"¥1.20 + $0.031" from ((…, currency), value) pairs."""
    per_currency = {}
    for (_, currency), value in items:
        per_currency[currency] = per_currency.get(currency, 0) + value
    return " + ".join(format_cost(value, currency) for currency, value in sorted(per_currency.items())
                      if currency in SYMBOLS)


def cost_per_day(rows):
    """[(day, "¥… + $…")] for the days that cost something, newest first."""
    days = {}
    for row in rows:
        if row["cost"]:
            days.setdefault(row["day"], []).append(((row["day"], row["currency"]), row["cost"]))
    return [(day, money(items)) for day, items in sorted(days.items(), reverse=True)]


def per_conversation(since):
    """The conversations that used the most, with their titles (a deleted one says so)."""
    rows = UsageRecord.per_conversation(since)
    titles = {c.id: c.title for c in Conversation.select(Conversation.id, Conversation.title)
              .where(Conversation.id.in_([row["conversation_id"] for row in rows]))}
    return [{"title": titles.get(row["conversation_id"]), "id": row["conversation_id"], "calls": row["calls"],
             "total_tokens": row["total_tokens"] or 0,
             "cost": format_cost(row["cost"], row["currency"]) if row["cost"] is not None else ""}
            for row in rows]


def imported(since):
    """Tokens recorded with imported conversations: shown apart, never in the totals."""
    records = list(UsageRecord.since(since, is_imported=True))
    return sum(r.prompt_tokens + r.completion_tokens for r in records)


def model_name(row):
    return row["model"] or gettext("（未知模型）")


def totals(rows, keys):
    """Sums of `keys` per model, biggest first (the last key decides) each with its colour,
    and over all models."""
    by_model = {}
    for row in rows:
        sums = by_model.setdefault(model_name(row), dict.fromkeys(keys, 0))
        for key in keys:
            sums[key] += row[key]
    models = sorted(by_model.items(), key=lambda item: -item[1][keys[-1]])
    models = [{"model": name, "colour": PALETTE[i % len(PALETTE)], **sums}
              for i, (name, sums) in enumerate(models)]
    return {"models": models, "overall": {key: sum(m[key] for m in models) for key in keys},
            "value_key": keys[-1]}


def chart(dates, rows, model_totals, unit):
    """One bar per day stacking one segment per model, in viewBox coordinates."""
    key = model_totals["value_key"]
    colours = {m["model"]: m["colour"] for m in model_totals["models"]}
    order = list(colours)
    per_day = {}
    for row in rows:
        per_day.setdefault(row["day"], []).append((model_name(row), row[key]))
    day_values = [per_day.get(day.isoformat(), []) for day in dates]
    day_totals = [sum(value for _, value in values) for values in day_values]
    ticks = nice_ticks(max(day_totals))
    scale = (HEIGHT - TOP - BOTTOM) / ticks[-1]
    slot = (WIDTH - LEFT - RIGHT) / len(dates)
    label_every = next(n for n in (1, 2, 5, 10, 15, 30) if len(dates) / n <= MAX_DATE_LABELS)
    bars = []
    for index, (day, values) in enumerate(zip(dates, day_values)):
        values = sorted(values, key=lambda item: order.index(item[0]))
        top = HEIGHT - BOTTOM
        segments = []
        for model, value in values:
            top -= value * scale
            segments.append({"y": round(top, 1), "height": round(value * scale, 1), "fill": colours[model]})
        x = LEFT + index * slot
        is_labelled = (len(dates) - 1 - index) % label_every == 0
        bars.append({"slot_x": round(x, 1), "slot_width": round(slot, 1),
                     "x": round(x + slot * 0.15, 1), "width": round(slot * 0.7, 1),
                     "centre": round(x + slot / 2, 1), "label": short_date(day) if is_labelled else "",
                     "segments": segments, "title": bar_title(day, values, unit)})
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
            "bottom": HEIGHT - BOTTOM, "bars": bars,
            "ticks": [{"y": round(HEIGHT - BOTTOM - t * scale, 1), "label": short_number(t)} for t in ticks],
            "summary": summary(dates, day_totals, unit)}


def short_date(day):
    """Month and day the reader's way: 11/25 in Chinese and English, 25.11. in German."""
    return format_skeleton("Md", day, locale=get_locale())


def bar_title(day, values, unit):
    if not values:
        return gettext("%(day)s：0 %(unit)s", day=short_date(day), unit=unit)
    parts = gettext("；").join(f"{model} {format_number(value)}" for model, value in values)
    return gettext("%(day)s：%(total)s %(unit)s（%(parts)s）", day=short_date(day),
                   total=format_number(sum(v for _, v in values)), unit=unit, parts=parts)


def summary(dates, day_totals, unit):
    busiest = max(range(len(dates)), key=lambda i: day_totals[i])
    return gettext("最近 %(days)s 天每天的用量柱状图，共 %(total)s %(unit)s，最多的一天是 %(day)s，%(most)s %(unit)s",
                   days=len(dates), total=format_number(sum(day_totals)), unit=unit,
                   day=format_skeleton("MMMd", dates[busiest], locale=get_locale()),
                   most=format_number(day_totals[busiest]))


def nice_ticks(maximum, steps=4):
    """From 0 in about `steps` round steps (1, 2 or 5 times a power of ten) to at least `maximum`."""
    raw = max(maximum, 1) / steps
    magnitude = 10 ** max(0, math.floor(math.log10(raw)))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, math.ceil(max(maximum, 1) / step) * step + 1, step))


def short_number(n):
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:g}k"
    return str(n)
