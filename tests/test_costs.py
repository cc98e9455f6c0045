"""The usage ledger and costs: one record per upstream call, kept whatever happens to
what it served; prices, estimates, budgets."""
import math
import re

import pytest

from helpers import HX, answer_calls, answer_id, ask, imported, paint, read_stream, send, wait_until
from models import Conversation, ImageTask, Message, UsageRecord
from services import costs


def answer_records():
    return list(UsageRecord.select().where(UsageRecord.kind == "answer").order_by(UsageRecord.id))


def test_a_dashscope_answer_is_recorded_with_its_cost_from_the_price_table(client, fake):
    message = ask(client, "你好")
    record = answer_records()[-1]
    expected = (message.prompt_tokens * 0.8 + message.completion_tokens * 2) / 1_000_000
    assert (record.provider, record.model, record.currency, record.is_estimate) == ("dashscope", "qwen-plus", "CNY", False)
    assert (record.prompt_tokens, record.completion_tokens) == (message.prompt_tokens, message.completion_tokens)
    assert math.isclose(record.cost, expected) and math.isclose(message.cost, expected)
    assert (record.conversation_id, record.message_id) == (message.conversation_id, message.id)
    page = client.get(f"/c/{message.conversation_id}").text
    assert costs.format_cost(expected, "CNY") in page


def test_an_openrouter_answer_is_recorded_with_the_cost_it_reports(client, fake):
    message = ask(client, "你好", provider="openrouter", model="openai/gpt-4o")
    assert answer_calls(fake)[-1]["json"]["usage"] == {"include": True}
    record = answer_records()[-1]
    assert (record.currency, record.cost) == ("USD", 0.00012)
    assert "$0.00012" in client.get(f"/c/{message.conversation_id}").text


def test_the_title_call_is_recorded_too(client, fake):
    message = ask(client, "你好")
    wait_until(lambda: UsageRecord.select().where(UsageRecord.kind == "title").count() == 1)
    title = UsageRecord.get(UsageRecord.kind == "title")
    assert title.conversation_id == message.conversation_id and title.prompt_tokens > 0


def test_a_stopped_answer_records_an_estimate_marked_as_such(client, fake):
    response = send(client, "你好", model="qwen-slow")
    message_id = answer_id(response)
    wait_until(lambda: Message.get_by_id(message_id).content.startswith("收到"))
    html = client.post(f"/m/{message_id}/stop", headers=HX).text
    record = answer_records()[-1]
    assert record.is_estimate and record.completion_tokens > 0
    message = Message.get_by_id(message_id)
    assert message.is_usage_estimate and message.total_tokens == record.prompt_tokens + record.completion_tokens
    assert "≈" in html


def test_deleting_regenerating_and_editing_never_change_past_usage(client, fake):
    first = ask(client, "第一句")
    ask(client, "第二句", conversation_id=first.conversation_id)
    client.post(f"/m/{first.id}/regenerate", headers=HX)
    regenerated = Message.select().where(Message.role == "assistant").order_by(Message.id.desc()).get()
    read_stream(client, regenerated.id)
    before = [(r.id, r.prompt_tokens, r.completion_tokens, r.cost) for r in answer_records()]
    assert len(before) == 3
    client.delete(f"/c/{first.conversation_id}", headers=HX)
    assert Conversation.select().count() == 0
    assert [(r.id, r.prompt_tokens, r.completion_tokens, r.cost) for r in answer_records()] == before
    assert "第一句" not in client.get("/usage").text  # the conversation is gone…
    assert "（已删除的对话）" in client.get("/usage").text  # …its usage is not


def test_a_model_without_a_price_shows_tokens_and_a_hint(client, fake):
    message = ask(client, "你好", model="qwen3-32b")
    assert message.cost is None and message.total_tokens
    page = client.get(f"/c/{message.conversation_id}").text
    assert "添加价格以显示费用" in page
    assert "添加价格" in client.get("/usage").text


def test_a_painting_is_recorded_per_picture(client, fake):
    send(client, "一间花店", paint="on")
    wait_until(lambda: UsageRecord.select().where(UsageRecord.kind == "painting").count() == 1)
    record = UsageRecord.get(UsageRecord.kind == "painting")
    assert (record.images, record.cost, record.currency) == (1, 0.14, "CNY")
    assert record.image_task_id == ImageTask.get().id
    answer = Message.get(Message.role == "assistant")
    assert "¥0.14" in client.get(f"/c/{answer.conversation_id}").text


def test_an_openrouter_painting_records_the_cost_openrouter_reported_for_each_call(client, fake):
    paint(client, "一间花店", provider="openrouter", model="google/gemini-2.5-flash-image", n="2")
    wait_until(lambda: UsageRecord.select().where(UsageRecord.kind == "painting").count() == 1)
    record = UsageRecord.get(UsageRecord.kind == "painting")
    assert (record.images, record.currency) == (2, "USD")
    assert record.cost == pytest.approx(2 * 0.00012)  # the fake reports $0.00012 a call


def test_prices_can_be_tiered_by_input_length():
    prices = costs.parse_prices("qwen-plus 0.8 2 128k\nqwen-plus 2.4 20 256k\nqwen-plus 4.8 48\nwan 每张 0.2\nwan2 image 0.1")
    assert [t[1:] for t in prices["qwen-plus"]["tiers"]] == [(0.8, 2), (2.4, 20), (4.8, 48)]
    assert (prices["wan"]["picture"], prices["wan2"]["picture"]) == (0.2, 0.1)
    with pytest.raises(costs.BadPrices):
        costs.parse_prices("qwen-plus cheap")


def test_the_price_table_and_budgets_are_saved_from_the_settings(client, fake):
    assert "qwen3-vl-plus" in client.get("/settings").text  # pre-filled
    bad = client.post("/usage/settings", data={"prices": "qwen-plus 便宜"}, headers=HX)
    assert "第 1 行" in bad.text
    saved = client.post("/usage/settings", data={"prices": "qwen-plus 1000 1000", "dashscope_budget": "5"},
                        headers=HX)
    assert "已保存" in saved.text and 'value="5"' in saved.text
    assert "正数" in client.post("/usage/settings", data={"prices": "", "dashscope_budget": "-1"}, headers=HX).text
    message = ask(client, "你好")
    assert math.isclose(message.cost, (message.prompt_tokens + message.completion_tokens) * 1000 / 1_000_000)


def month_spent(provider="dashscope"):
    wait_until(lambda: UsageRecord.select().where(UsageRecord.kind == "title").count() == 1)
    return UsageRecord.spent(provider, costs.month_start())


@pytest.mark.parametrize("share, sentence", [(0.9, "达到每月预算"), (1.5, "超过了每月预算")])
def test_the_budget_gives_a_notice_then_a_warning_and_never_blocks(client, fake, share, sentence):
    first = ask(client, "你好")
    spent = month_spent()
    client.post("/usage/settings", data={"prices": costs.DEFAULT_PRICES, "dashscope_budget": str(spent / share)},
                headers=HX)
    page = client.get(f"/c/{first.conversation_id}").text
    assert sentence in page
    second = ask(client, "再来", conversation_id=first.conversation_id)
    assert second.status == Message.DONE


def test_no_budget_notice_below_80_percent(client, fake):
    first = ask(client, "你好")
    client.post("/usage/settings", data={"prices": costs.DEFAULT_PRICES, "dashscope_budget": str(month_spent() * 2)},
                headers=HX)
    assert "每月预算" not in client.get(f"/c/{first.conversation_id}").text


def total_row(html):
    row = re.search(r'<th scope="row"[^>]*>合计</th>(.*?)</tr>', html, re.S).group(1)
    return re.findall(r"<td[^>]*>([^<]*)</td>", row)


def test_imported_usage_is_shown_apart_and_not_counted(client, fake):
    message = ask(client, "你好")
    month_spent()
    before = total_row(client.get("/usage").text)
    exported = client.get(f"/c/{message.conversation_id}/export.json").get_data()
    client.delete(f"/c/{message.conversation_id}", headers=HX)  # its usage stays in the ledger
    imported(client, exported)  # (the same export is skipped while the conversation is here)
    record = UsageRecord.get(UsageRecord.is_imported == True)  # noqa: E712
    assert record.cost == message.cost and record.prompt_tokens == message.prompt_tokens
    html = client.get("/usage").text
    assert "导入的对话里记录的用量" in html
    assert total_row(html) == before


def test_the_usage_page_shows_costs_per_model_day_and_conversation(client, fake):
    ask(client, "你好")
    ask(client, "你好", provider="openrouter", model="openai/gpt-4o")
    wait_until(lambda: UsageRecord.select().where(UsageRecord.kind == "title").count() == 2)
    html = client.get("/usage").text
    assert costs.format_cost(UsageRecord.spent("openrouter", costs.month_start()), "USD") in html
    assert costs.format_cost(UsageRecord.spent("dashscope", costs.month_start()), "CNY") in html
    assert "每个对话" in html and "每天" in html


@pytest.mark.parametrize("value, text", [(0.0012, "¥0.0012"), (0.00031, "$0.00031"), (1.5, "¥1.50"), (0, "¥0.00")])
def test_costs_are_shown_with_two_significant_digits(value, text):
    assert costs.format_cost(value, "CNY" if text[0] == "¥" else "USD") == text


def test_an_answer_interrupted_by_a_restart_records_an_estimate_once(client, fake):
    message = ask(client, "你好")
    UsageRecord.delete().where(UsageRecord.message_id == message.id).execute()
    Message.update(status=Message.STREAMING).where(Message.id == message.id).execute()
    read_stream(client, message.id)
    read_stream(client, message.id)  # a second look settles nothing again
    records = list(UsageRecord.select().where(UsageRecord.message_id == message.id))
    assert len(records) == 1 and records[0].is_estimate and records[0].completion_tokens > 0
    assert Message.get_by_id(message.id).is_usage_estimate
