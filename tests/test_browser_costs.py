"""Costs in the page: under each answer, on /usage, and the monthly budget's warning."""
import re

import pytest
from playwright.sync_api import expect

from browser_helpers import answer, ask, open_chat

pytestmark = pytest.mark.browser


def test_each_answer_shows_its_cost_and_usage_adds_them_up(page, live_server):
    open_chat(page, live_server, "dashscope", "qwen-plus")
    ask(page, "你好")
    expect(answer(page).locator(".cost")).to_have_text(re.compile(r"^¥0\.0\d+$"))
    open_chat(page, live_server, "openrouter", "openai/gpt-4o")
    ask(page, "你好")
    expect(answer(page).locator(".cost")).to_have_text("$0.00012")
    page.screenshot(path="/tmp/conv-cost-answer-desktop.png")
    page.get_by_role("link", name="用量").click()
    expect(page.get_by_role("heading", name="费用")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("openai/gpt-4o")
    expect(page.locator("#costs-heading + p + div")).to_contain_text("¥")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path="/tmp/conv-usage-desktop.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path="/tmp/conv-usage-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_past_the_monthly_budget_the_chat_warns_before_sending_and_still_sends(page, live_server):
    open_chat(page, live_server, "dashscope", "qwen-plus")
    ask(page, "你好")
    expect(answer(page).locator(".cost")).to_be_visible()
    page.goto(live_server.url + "/settings")
    section = page.locator("#costs")
    section.get_by_label("阿里云百炼（DashScope） 每月预算（CNY）").fill("0.00001")
    section.get_by_role("button", name="保存").click()
    expect(section.get_by_role("status")).to_contain_text("已保存")
    page.screenshot(path="/tmp/conv-cost-settings-desktop.png", full_page=True)
    page.go_back()
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("超过了每月预算")
    page.screenshot(path="/tmp/conv-budget-warning-desktop.png")
    ask(page, "还要发")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：还要发")
