"""Moderation in the page: what it refused is marked and left out; the conversation goes on."""
import pytest
from playwright.sync_api import expect

from browser_helpers import answer, ask, open_chat, question
from fake_upstream import FLAG_OUTPUT, FLAGGED, FLAGGED_BAILIAN
from helpers import PROVIDERS, answer_calls, sent_texts

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("provider, model", PROVIDERS)
def test_a_refused_message_is_marked_and_the_next_one_works(page, live_server, fake, provider, model):
    open_chat(page, live_server, provider, model)
    ask(page, f"第一句 {FLAGGED}")
    expect(answer(page).locator(".message-error")).to_contain_text("审核")
    refused = question(page, "第一句")
    expect(refused.locator(".moderation-mark")).to_contain_text("未通过审核，未发送给模型")
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=f"/tmp/conv-moderation-input-{provider}-phone.png")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=f"/tmp/conv-moderation-input-{provider}-desktop.png")
    ask(page, "第二句")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：第二句")
    assert sent_texts(fake) == ["第二句"]


@pytest.mark.parametrize("provider, model", PROVIDERS)
def test_an_answer_cut_by_output_moderation_is_kept_marked_and_left_out(page, live_server, fake, provider, model):
    open_chat(page, live_server, provider, model)
    ask(page, f"讲个故事 {FLAG_OUTPUT}")
    expect(answer(page).locator(".moderation-mark")).to_contain_text("被审核中断")
    expect(answer(page).locator(".markdown")).to_contain_text("flagged")
    expect(answer(page)).to_have_attribute("data-excluded", "")
    page.screenshot(path=f"/tmp/conv-moderation-output-{provider}-desktop.png")
    ask(page, "继续")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：继续")
    assert sent_texts(fake) == [f"讲个故事 {FLAG_OUTPUT}", "继续"]


def test_the_mark_offers_to_put_back_edit_or_resend_to_the_other_provider(page, live_server, fake):
    open_chat(page, live_server, "dashscope", "qwen-plus")
    ask(page, f"问题 {FLAGGED}")
    refused = question(page, "问题")
    expect(refused.locator(".moderation-mark")).to_be_visible()
    refused.get_by_role("button", name="放回上下文").first.click()
    expect(refused.locator(".moderation-mark")).to_have_count(0)
    expect(refused.get_by_role("button", name="移出上下文")).to_be_visible()
    refused.get_by_role("button", name="移出上下文").click()
    expect(refused.get_by_role("button", name="放回上下文")).to_be_visible()
    page.reload()
    ask(page, "另一个问题")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：另一个问题")
    assert sent_texts(fake) == ["另一个问题"]


def test_a_refused_message_is_resent_to_openrouter_from_its_mark(page, live_server, fake):
    open_chat(page, live_server, "dashscope", "qwen-plus")
    ask(page, f"问题 {FLAGGED_BAILIAN}")
    mark = question(page, "问题").locator(".moderation-mark")
    expect(mark).to_be_visible()
    # OpenRouter's default model is not in the fake's list: choose one the fake knows.
    page.goto(live_server.url + "/settings")
    section = page.locator("#settings-openrouter")
    section.get_by_label("默认文本模型").fill("qwen/qwen3-32b")
    section.get_by_role("button", name="保存").click()
    expect(section.get_by_role("status").first).to_contain_text("已保存")
    page.go_back()
    page.reload()
    question(page, "问题").get_by_role("button", name="改用 OpenRouter 重新发送").click()
    expect(answer(page).locator(".markdown")).to_contain_text("收到：问题")
    expect(answer(page)).to_contain_text("qwen/qwen3-32b")
    expect(page.get_by_label("服务")).to_have_value("openrouter")
    assert answer_calls(fake)[-1]["path"].startswith("/openrouter/")


def test_a_message_left_out_by_hand_is_greyed_and_not_sent(page, live_server, fake):
    open_chat(page, live_server, "dashscope", "qwen-plus")
    ask(page, "第一问")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：第一问")
    answer(page).get_by_role("button", name="移出上下文").click()
    expect(answer(page)).to_contain_text("不在上下文中")
    ask(page, "第二问")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：第二问")
    assert sent_texts(fake) == ["第一问", "第二问"]
