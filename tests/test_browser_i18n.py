"""Switching the interface language in the page, in Debian's chromium."""
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_language_switch_is_remembered_and_switches_back(page, live_server):
    page.goto(live_server.url + "/settings")
    page.get_by_role("link", name="Switch to English").click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.reload()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    page.get_by_role("link", name="Chat", exact=True).click()
    expect(page.get_by_role("link", name="+ New chat")).to_be_visible()
    page.wait_for_load_state("load")  # static/app.js, which follows the provider select, has run
    expect(page.get_by_label("Model", exact=True)).to_have_attribute("placeholder", "Default: qwen-plus")
    page.locator("#chat-provider").select_option("openrouter")
    expect(page.get_by_label("Model", exact=True)).to_have_attribute("placeholder", "Default: openai/gpt-4o-mini")
    page.get_by_role("link", name="Switch to Chinese").click()
    expect(page.get_by_role("link", name="＋ 新对话")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
