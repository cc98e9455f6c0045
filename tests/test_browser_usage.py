"""The usage page in chromium, on a phone-sized screen."""
import pytest
from playwright.sync_api import expect

import db
from models import Conversation, UsageRecord

pytestmark = pytest.mark.browser


def seed(live_server):
    db.init_db(f"sqlite:///{live_server.env['MOYAN_DATA_DIR']}/moyan.db")
    with db.database.connection_context():
        conversation = Conversation.create()
        for model, tokens in (("qwen-plus", 1200), ("deepseek/deepseek-chat-v3-0324", 800)):
            UsageRecord.create(kind="answer", provider="dashscope", model=model, prompt_tokens=tokens,
                               completion_tokens=tokens, conversation_id=conversation.id)
        UsageRecord.create(kind="painting", provider="dashscope", model="wan2.2-t2i-flash", images=1)


def test_the_charts_show_and_fit_a_phone_screen(page, live_server):
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(live_server.url + "/")  # Moyan has made its database
    seed(live_server)
    page.get_by_role("link", name="用量").click()
    charts = page.locator("svg.usage-chart")
    expect(charts).to_have_count(2)
    expect(charts.first).to_be_visible()
    expect(charts.first.locator("g.bar")).to_have_count(30)
    expect(page.get_by_role("img", name="最近 30 天每天的用量柱状图，共 4,000 tokens")).to_be_visible()
    page.get_by_role("link", name="最近 7 天").click()
    expect(charts.first.locator("g.bar")).to_have_count(7)
    assert charts.first.bounding_box()["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_the_header_keeps_every_link_on_one_line_on_a_phone(page, live_server):
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(live_server.url + "/")  # the chat page adds the sidebar button
    heights = page.locator("header a").evaluate_all("links => links.map(a => a.getBoundingClientRect().height)")
    assert max(heights) < 40, heights
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
