"""The usage page: tokens per day and model, pictures per day, drawn as inline SVG, read
from the usage ledger."""
import datetime
import re

import pytest

from models import Conversation, UsageRecord
from services.usage import nice_ticks, short_number


def days_ago(days):
    return datetime.datetime.combine(datetime.date.today() - datetime.timedelta(days=days),
                                     datetime.time(12))


def answer(model, prompt, completion, days=0, **fields):
    conversation = Conversation.create()
    return UsageRecord.create(kind="answer", model=model, provider="dashscope", prompt_tokens=prompt,
                              completion_tokens=completion, at=days_ago(days),
                              conversation_id=conversation.id, **fields)


def picture(model, days=0):
    return UsageRecord.create(kind="painting", model=model, provider="dashscope", images=1, at=days_ago(days))


def bar_groups(html):
    return re.findall(r'<g class="bar">\s*<title>([^<]*)</title>', html)


def token_row(html, model):
    row = re.search(rf'<th scope="row"[^>]*>{re.escape(model)}</th>(.*?)</tr>', html, re.S).group(1)
    return re.findall(r"<td[^>]*>([^<]*)</td>", row)


def test_the_table_sums_tokens_and_answers_per_model_within_the_range(client):
    answer("qwen-plus", 100, 200)
    answer("qwen-plus", 1000, 2000, days=6)
    answer("qwen-max", 5, 5, days=7)  # one day before the 7 days
    html = client.get("/usage?days=7").text
    assert token_row(html, "qwen-plus")[:4] == ["2", "1,100", "2,200", "3,300"]
    assert "qwen-max" not in html
    assert token_row(client.get("/usage?days=30").text, "qwen-max")[:4] == ["1", "5", "5", "10"]


def test_every_day_of_the_range_has_a_bar_days_without_usage_too(client):
    answer("qwen-plus", 100, 200, days=2)
    for days in (7, 30, 90):
        titles = bar_groups(client.get(f"/usage?days={days}").text)
        assert len(titles) == days
        assert titles[-3].endswith("：300 tokens（qwen-plus 300）")
        assert titles[-1].endswith("：0 tokens")


def test_an_unknown_range_falls_back_to_30_days(client):
    answer("qwen-plus", 100, 200)
    for query in ("?days=bogus", "?days=12", ""):
        html = client.get("/usage" + query).text
        assert len(bar_groups(html)) == 30
        assert re.search(r'aria-current="page"\s+class="[^"]*">最近 30 天', html)


def test_records_without_tokens_add_nothing_to_the_token_table(client):
    answer("qwen-plus", 100, 200)
    answer("qwen-silent", 0, 0)
    response = client.get("/usage")
    assert response.status_code == 200
    assert token_row(response.text, "qwen-plus")[:4] == ["1", "100", "200", "300"]
    assert "qwen-silent" not in response.text


def test_pictures_are_counted_per_day_and_model(client):
    picture("wan2.2-t2i-flash")
    picture("wan2.2-t2i-flash")
    picture("wanx2.1-t2i-plus", days=1)
    html = client.get("/usage?days=7").text
    assert "没有记录到 tokens 用量" in html
    titles = bar_groups(html)
    assert len(titles) == 7
    assert titles[-1].endswith("：2 张（wan2.2-t2i-flash 2）")
    assert token_row(html, "wanx2.1-t2i-plus")[0] == "1"
    assert token_row(html, "合计")[0] == "3"


def test_the_chart_has_round_ticks_a_legend_and_a_summary_without_inline_styles(client):
    answer("qwen-plus", 1300, 2000)
    html = client.get("/usage").text
    ticks = re.findall(r'text-anchor="end" class="fill-stone-500">([^<]*)</text>', html)
    assert ticks == ["0", "1k", "2k", "3k", "4k"]
    assert re.search(r'<svg class="usage-chart[^"]*"[^>]*role="img" aria-label="最近 30 天[^"]*3,300 tokens', html)
    assert re.search(r'<li[^>]*>\s*<svg[^>]*aria-hidden="true"><rect [^>]*fill="#0f766e"/></svg>qwen-plus', html)
    assert "style=" not in html  # the CSP allows no inline styles


def test_no_usage_yet_is_said_in_chinese(client):
    html = client.get("/usage").text
    assert "最近 30 天还没有用量" in html
    assert "<svg class=\"usage-chart" not in html


def test_the_nav_links_to_the_usage_page(client):
    html = client.get("/usage").text
    assert re.search(r'href="/usage" aria-current="page"', html)


@pytest.mark.parametrize("value, ticks", [(0, [0, 1]), (3, [0, 1, 2, 3]), (3300, [0, 1000, 2000, 3000, 4000]),
                                          (95_000, [0, 50_000, 100_000])])
def test_axis_ticks_are_round_numbers_from_zero(value, ticks):
    assert nice_ticks(value) == ticks


def test_tick_labels_are_short():
    assert [short_number(n) for n in (0, 500, 2000, 2500, 1_500_000)] == ["0", "500", "2k", "2.5k", "1.5M"]
