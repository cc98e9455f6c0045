"""Pictures and words in one loop (issue 16), as a person uses it in chromium."""
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def ask(page, live_server, text):
    page.goto(live_server.url + "/")
    box = page.get_by_label("消息")
    box.fill(text)
    box.press("Enter")
    answer = page.locator("article.answer[data-status=done]").last
    expect(answer).to_contain_text("完毕")
    return answer


def select_text_of(locator):
    locator.evaluate("""element => {
        const range = document.createRange();
        range.selectNodeContents(element);
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
    }""")


def test_paint_from_a_whole_answer(page, live_server):
    answer = ask(page, live_server, "湖边的小屋")
    answer.get_by_role("link", name="用这段画图").click()
    expect(page).to_have_url(live_server.url + "/images?answer=2")
    expect(page.get_by_label("提示词", exact=True)).to_have_value(
        "收到：湖边的小屋。\n\n下面是一段代码：\n\n```python\nprint(\"你好\")\n```\n\n完毕。")
    page.get_by_role("button", name="开始画").click()
    expect(page.locator(".image-task").first.locator("img")).to_have_count(1, timeout=20_000)


def test_paint_from_the_selected_part_of_an_answer(page, live_server):
    answer = ask(page, live_server, "湖边的小屋")
    select_text_of(answer.locator(".markdown p").first)
    answer.get_by_role("link", name="用这段画图").click()
    expect(page.get_by_label("提示词", exact=True)).to_have_value("收到：湖边的小屋。")


def test_choosing_openrouter_for_a_painting_switches_the_model_too(page, live_server):
    page.goto(live_server.url + "/images")
    model = page.get_by_label("模型")
    expect(model).to_have_value("wan2.2-t2i-flash")
    page.get_by_label("服务").select_option("openrouter")
    expect(model).to_have_value("google/gemini-2.5-flash-image")
    expect(model).to_have_attribute("list", "paint-model-ids-openrouter")
    page.get_by_label("提示词", exact=True).fill("一只猫")
    page.get_by_label("张数").select_option("2")
    page.get_by_role("button", name="开始画").click()
    expect(page.locator(".image-task").first.locator("img")).to_have_count(2, timeout=20_000)
    page.get_by_label("服务").select_option("dashscope")
    expect(model).to_have_value("wan2.2-t2i-flash")
