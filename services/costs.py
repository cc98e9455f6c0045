"""What each upstream call cost: the usage ledger, DashScope's price table, monthly budgets.

OpenRouter says what a call cost (`usage.cost`, USD). DashScope has no price API: its cost
comes from the price table in the settings (CNY per million tokens, per picture for image
models), pre-filled with list prices and editable.
"""
import datetime
import math
import re

from flask_babel import gettext

from db import connection
from models import Message, Setting, UsageRecord, now
from services.settings import saved_values

CURRENCIES = {"dashscope": "CNY", "openrouter": "USD"}
SYMBOLS = {"CNY": "¥", "USD": "$"}
PRICES_KEY = "dashscope_prices"
BUDGET_KEYS = {"dashscope": "dashscope_monthly_budget", "openrouter": "openrouter_monthly_budget"}
NOTICE_SHARE = 0.8
MAX_PRICES = 20_000  # characters of the price table

# Alibaba Cloud Model Studio (mainland) list prices, CNY, as published in 2026-12; editable
# in the settings. One line per tier: model, input and output CNY per million tokens, and
# the input tokens the tier goes up to (none: no limit); "model image price" for pictures.
DEFAULT_PRICES = """\
qwen-plus 0.8 2 128k
qwen-plus 2.4 20 256k
qwen-plus 4.8 48
qwen-max 2.4 9.6
qwen-flash 0.15 1.5 128k
qwen-flash 0.6 6 256k
qwen-flash 1.2 12
qwen-turbo 0.3 0.6
qwen3-max 2.5 10 32k
qwen3-max 4 16 128k
qwen3-max 7 28
qwen3-vl-plus 1 10 32k
qwen3-vl-plus 1.5 15 128k
qwen3-vl-plus 3 30
wan2.2-t2i-flash image 0.14
wan2.2-t2i-plus image 0.2
wan2.5-t2i-preview image 0.2
wan2.5-i2i-preview image 0.2
"""

PER_PICTURE = ("每张", "per-image", "image")
NUMBER = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


class BadPrices(ValueError):
    """The price table has a line it cannot read; the message says which, for the reader."""


def save_settings(form):
    """Save the price table and the monthly budgets as typed; return why not, or ""."""
    prices = form.get("prices", "").strip()
    if len(prices) > MAX_PRICES:
        return gettext("价格表太长了。")
    try:
        parse_prices(prices)
    except BadPrices as exc:
        return str(exc)
    budgets = {}
    for provider, key in BUDGET_KEYS.items():
        value = form.get(f"{provider}_budget", "").strip()
        try:
            is_positive = bool(value) and 0 < float(value) < math.inf
        except ValueError:
            is_positive = False
        if value and not is_positive:
            return gettext("每月预算应是一个正数，或留空表示不设。")
        budgets[key] = value or None  # as typed: 0.00001 stays 0.00001
    Setting.set_value(PRICES_KEY, None if prices == DEFAULT_PRICES.strip() else prices + "\n")
    for key, value in budgets.items():
        Setting.set_value(key, value)
    return ""


def parse_prices(text):
    """{model: {"tiers": [(input up to, input, output)], "picture": price}} from the table's text."""
    prices = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#")[0].split()
        if not words:
            continue
        entry = prices.setdefault(words[0], {"tiers": [], "picture": None})
        try:
            if len(words) == 3 and words[1] in PER_PICTURE:
                entry["picture"] = amount(words[2])
            elif len(words) in (3, 4):
                up_to = tokens(words[3]) if len(words) == 4 else math.inf
                entry["tiers"].append((up_to, amount(words[1]), amount(words[2])))
            else:
                raise ValueError(line)
        except ValueError:
            raise BadPrices(gettext("价格表第 %(line)s 行看不懂：「%(text)s」。格式见上面的说明。",
                                    line=number, text=line.strip()[:60])) from None
    for entry in prices.values():
        entry["tiers"].sort()
    return prices


def amount(word):
    value = float(word)
    if not math.isfinite(value) or value < 0:
        raise ValueError(word)
    return value


def tokens(word):
    found = NUMBER.match(word)
    if not found:
        raise ValueError(word)
    return float(found.group(1)) * {"": 1, "k": 1000, "m": 1_000_000}[found.group(2).lower()]


def price_text():
    return saved_values().get(PRICES_KEY) or DEFAULT_PRICES


def dashscope_cost(model, prompt_tokens=0, completion_tokens=0, images=0):
    """CNY from the price table, or None when it has no price for the model."""
    entry = parse_prices(price_text()).get(model)
    if entry is None:
        return None
    if images:
        return images * entry["picture"] if entry["picture"] is not None else None
    tier = next((t for t in entry["tiers"] if prompt_tokens <= t[0]), entry["tiers"][-1] if entry["tiers"] else None)
    if tier is None:
        return None
    return (prompt_tokens * tier[1] + completion_tokens * tier[2]) / 1_000_000


def cost_of(provider, model, usage, counts, images=0):
    """(cost, currency) of one call: OpenRouter's own figure, DashScope's from the table."""
    if provider == "openrouter":
        cost = usage.get("cost") if isinstance(usage, dict) else None
        is_number = isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0
        return (float(cost) if is_number else None), "USD"
    try:
        return dashscope_cost(model, counts.get("prompt_tokens", 0), counts.get("completion_tokens", 0), images), "CNY"
    except BadPrices:
        return None, "CNY"


def reasoning_tokens(usage):
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    value = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else 0


def estimate_tokens(text):
    """A rough count when no usage came: a token per Chinese character, one per 4 other characters."""
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return wide + math.ceil((len(text) - wide) / 4)


def record_answer(message_id, usage, counts, prompt):
    """Append the ledger record of a finished answer and keep its token counts and cost on
    the message.

    `counts` are the token counts read from `usage`; without them (a stopped or cut answer
    whose usage never came) the tokens are estimated and marked so. Nothing is recorded for
    an answer that failed before its first word without usage."""
    message = Message.get_by_id(message_id)
    is_estimate = not counts.get("total_tokens")
    if is_estimate:
        if not (message.content or message.reasoning):
            return
        counts = {"prompt_tokens": estimate_tokens("".join(m["content"] for m in prompt if isinstance(m.get("content"), str))),
                  "completion_tokens": estimate_tokens(message.content + message.reasoning)}
        counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
    cost, currency = cost_of(message.provider, message.model, usage, counts)
    UsageRecord.create(kind=UsageRecord.ANSWER, provider=message.provider, model=message.model,
                       prompt_tokens=counts["prompt_tokens"], completion_tokens=counts["completion_tokens"],
                       reasoning_tokens=reasoning_tokens(usage), cost=cost, currency=currency,
                       is_estimate=is_estimate, conversation_id=message.conversation_id, message_id=message.id)
    Message.update(**counts, cost=cost, currency=currency, is_usage_estimate=is_estimate).where(
        Message.id == message.id).execute()


def record_title(provider, model, usage, counts, conversation_id, text):
    """The ledger record of a title call (estimated when its usage did not come)."""
    is_estimate = not counts.get("total_tokens")
    if is_estimate:
        counts = {"prompt_tokens": estimate_tokens(text[0]), "completion_tokens": estimate_tokens(text[1])}
    cost, currency = cost_of(provider, model, usage, counts)
    with connection():
        UsageRecord.create(kind=UsageRecord.TITLE, provider=provider, model=model,
                           prompt_tokens=counts.get("prompt_tokens", 0),
                           completion_tokens=counts.get("completion_tokens", 0), cost=cost, currency=currency,
                           is_estimate=is_estimate, conversation_id=conversation_id)


def record_painting(task, images, usages=()):
    """The ledger record of a painting that gave `images` pictures: at DashScope's prices,
    or the sum of what OpenRouter's calls (`usages`) reported."""
    if not images:
        return
    if task.provider == "openrouter":
        costs = [cost_of("openrouter", task.model, usage, {})[0] for usage in usages]
        cost, currency = (sum(costs) if costs and None not in costs else None), "USD"
    else:
        cost, currency = cost_of(task.provider, task.model, None, {}, images=images)
    UsageRecord.create(kind=UsageRecord.PAINTING, provider=task.provider, model=task.model, images=images,
                       cost=cost, currency=currency, image_task_id=task.id)


def record_imported(message, conversation_id):
    """An imported answer's usage, recorded apart: it was spent elsewhere, or before."""
    if not message.get("total_tokens"):
        return
    UsageRecord.create(kind=UsageRecord.ANSWER, provider=message.get("provider", ""), model=message.get("model", ""),
                       prompt_tokens=message.get("prompt_tokens") or 0,
                       completion_tokens=message.get("completion_tokens") or 0,
                       cost=message.get("cost"), currency=message.get("currency", ""),
                       at=message.get("created_at") or now(), conversation_id=conversation_id, is_imported=True)


def move_imported(from_conversation_id, to_conversation_id):
    """An import's records follow its conversation when it takes another's place."""
    (UsageRecord.update(conversation_id=to_conversation_id)
     .where(UsageRecord.is_imported & (UsageRecord.conversation_id == from_conversation_id)).execute())


def format_cost(value, currency):
    """¥0.0012, $0.00031: two significant digits below 1, cents above."""
    digits = 2 if value >= 1 or value <= 0 else max(2, 1 - math.floor(math.log10(value)))
    return f"{SYMBOLS.get(currency, '')}{value:.{digits}f}"


def budget(provider):
    value = saved_values().get(BUDGET_KEYS[provider])
    try:
        return float(value) if value else None
    except ValueError:
        return None


def month_start():
    return datetime.datetime.combine(datetime.date.today().replace(day=1), datetime.time.min)


def budget_state(provider):
    """None, or what this month spent against the provider's monthly budget: a notice past
    80 %, a warning past 100 %. Never a block: the person decides."""
    limit = budget(provider)
    if not limit:
        return None
    spent = UsageRecord.spent(provider, month_start()) or 0
    share = spent / limit
    if share < NOTICE_SHARE:
        return None
    currency = CURRENCIES[provider]
    return {"is_over": share >= 1, "percent": int(share * 100), "spent": format_cost(spent, currency),
            "budget": format_cost(limit, currency), "provider": provider}
