"""Versions and branches in the page, on both providers."""
import pytest
from playwright.sync_api import expect

from browser_helpers import answer, ask, open_chat, question
from fake_upstream import REPLY
from helpers import PROVIDERS, sent_texts

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("provider, model", PROVIDERS)
def test_regenerate_keeps_the_old_answer_as_a_version(page, live_server, fake, provider, model):
    open_chat(page, live_server, provider, model)
    ask(page, "你好")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：你好")
    first_id = answer(page).get_attribute("id")
    answer(page).get_by_role("button", name="重新生成").click()
    expect(answer(page).locator(".versions")).to_contain_text("2 / 2")
    expect(page.locator(f"#{first_id}")).to_have_count(0)
    answer(page).get_by_role("button", name="上一个版本").click()
    expect(answer(page).locator(".versions")).to_contain_text("1 / 2")
    expect(answer(page)).to_have_id(first_id)
    page.screenshot(path=f"/tmp/conv-versions-answer-{provider}-desktop.png")
    ask(page, "接着说")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：接着说")
    assert sent_texts(fake) == ["你好", REPLY("你好"), "接着说"]


@pytest.mark.parametrize("provider, model", PROVIDERS)
def test_editing_a_past_message_branches_and_the_old_branch_stays(page, live_server, fake, provider, model):
    open_chat(page, live_server, provider, model)
    ask(page, "第一句")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：第一句")
    ask(page, "第二句")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：第二句")
    question(page, "第一句").get_by_role("button", name="编辑").click()
    page.get_by_label("修改消息").fill("新的第一句")
    page.get_by_role("button", name="保存并重新发送").click()
    expect(answer(page).locator(".markdown")).to_contain_text("收到：新的第一句")
    expect(page.locator("article")).to_have_count(2)
    edited = question(page, "新的第一句")
    expect(edited.locator(".versions")).to_contain_text("2 / 2")
    assert sent_texts(fake) == ["新的第一句"]
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=f"/tmp/conv-versions-branch-{provider}-phone.png")
    edited.get_by_role("button", name="上一个版本").click()
    expect(page.locator("article")).to_have_count(4)
    expect(answer(page).locator(".markdown")).to_contain_text("收到：第二句")
    expect(question(page, "第一句").locator(".versions")).to_contain_text("1 / 2")
