"""Pictures and words in one loop (issue 16), as a person uses it in chromium."""
import pytest
from playwright.sync_api import expect

from browser_helpers import ask, open_chat, shoot
from fake_upstream import make_png

pytestmark = pytest.mark.browser


def answer_to(page, live_server, text):
    open_chat(page, live_server)
    ask(page, text)
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
    answer = answer_to(page, live_server, "湖边的小屋")
    answer.get_by_role("link", name="用这段画图").click()
    expect(page).to_have_url(live_server.url + "/images?answer=2")
    expect(page.get_by_label("提示词", exact=True)).to_have_value(
        "收到：湖边的小屋。\n\n下面是一段代码：\n\n```python\nprint(\"你好\")\n```\n\n完毕。")
    page.get_by_role("button", name="开始画").click()
    expect(page.locator(".image-task").first.locator("img")).to_have_count(1, timeout=20_000)


def test_paint_from_the_selected_part_of_an_answer(page, live_server):
    answer = answer_to(page, live_server, "湖边的小屋")
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


# -- pictures in the chat ------------------------------------------------------------

def a_png_file(tmp_path, name="猫.png"):
    path = tmp_path / name
    path.write_bytes(make_png(320, 200, (0xE0, 0x7A, 0x3B)))
    return path


def ask_about_a_picture(page, live_server, tmp_path):
    """Attach a PNG with the button and ask about it."""
    open_chat(page, live_server)
    page.locator("#picture-input").set_input_files(a_png_file(tmp_path))
    expect(page.locator("#composer-pictures .attached-picture")).to_have_count(1)
    ask(page, "这是什么颜色？")


def test_a_picture_attached_with_the_button_is_answered_by_a_model_that_can_see(page, live_server, tmp_path):
    ask_about_a_picture(page, live_server, tmp_path)
    question = page.locator("article").filter(has_text="这是什么颜色？")
    expect(question.locator(".message-pictures img")).to_have_count(1)
    answer = page.locator("article.answer[data-status=done]").last
    expect(answer).to_contain_text("看到 1 张图片。")
    expect(answer).to_contain_text("看图模型 qwen3-vl-plus")
    expect(page.locator("#composer-pictures .attached-picture")).to_have_count(0)
    shoot(page, "vision-chat-desktop", is_readme=True)


PUT_FILE = """([kind, bytes]) => {
    const file = new File([new Uint8Array(bytes)], "粘贴.png", {type: "image/png"});
    const transfer = new DataTransfer();
    transfer.items.add(file);
    const box = document.getElementById("message-text");
    const event = kind === "paste"
        ? new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true})
        : new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true});
    box.dispatchEvent(event);
}"""


@pytest.mark.parametrize("kind", ["paste", "drop"])
def test_a_picture_can_be_pasted_or_dropped_into_the_composer_and_removed(page, live_server, kind):
    page.goto(live_server.url + "/")
    page.evaluate(PUT_FILE, [kind, list(make_png(64, 64))])
    chips = page.locator("#composer-pictures .attached-picture")
    expect(chips).to_have_count(1)
    page.evaluate(PUT_FILE, [kind, list(make_png(64, 64))])
    expect(chips).to_have_count(2)
    chips.first.get_by_role("button", name="移除这张图片").click()
    expect(chips).to_have_count(1)


def test_a_file_that_is_not_a_picture_is_explained(page, live_server, tmp_path):
    page.goto(live_server.url + "/")
    text = tmp_path / "说明.png"
    text.write_text("不是图片")
    page.locator("#picture-input").set_input_files(text)
    expect(page.locator("#alerts")).to_contain_text("不是 PNG、JPEG 或 WebP 图片")
    expect(page.locator("#composer-pictures .attached-picture")).to_have_count(0)


def a_painting(page, live_server):
    page.goto(live_server.url + "/images")
    page.get_by_label("提示词", exact=True).fill("湖边的小屋")
    page.get_by_role("button", name="开始画").click()
    card = page.locator(".image-task").first
    expect(card.locator("img")).to_have_count(1, timeout=20_000)
    return card


def test_asking_about_a_painting_opens_a_conversation_with_it_attached(page, live_server):
    a_painting(page, live_server).get_by_role("link", name="就这张图提问").click()
    expect(page.locator("#composer-pictures .attached-picture")).to_have_count(1)
    expect(page.get_by_label("消息")).to_be_focused()
    page.keyboard.type("图里有什么？")
    page.keyboard.press("Enter")
    answer = page.locator("article.answer[data-status=done]").last
    expect(answer).to_contain_text("看到 1 张图片。")


def test_asking_about_a_picture_from_its_detail_page(page, live_server):
    a_painting(page, live_server).locator("a").first.click()
    page.get_by_role("link", name="就这张图提问").click()
    expect(page).to_have_url(live_server.url + "/?picture=1")
    expect(page.locator("#composer-pictures .attached-picture")).to_have_count(1)


# -- image editing ---------------------------------------------------------------------

@pytest.mark.parametrize("provider, model", [("dashscope", "wan2.5-i2i-preview"),
                                             ("openrouter", "google/gemini-2.5-flash-image")])
def test_editing_a_painting_makes_a_new_picture_linked_to_it(page, live_server, provider, model):
    a_painting(page, live_server).locator("a").first.click()
    page.get_by_role("link", name="改这张图").click()
    expect(page.get_by_label("想怎么改")).to_be_focused()
    page.get_by_label("服务").select_option(provider)
    expect(page.get_by_label("模型")).to_have_value(model)
    page.get_by_label("想怎么改").fill("把天空改成晚霞")
    page.get_by_role("button", name="开始改").click()
    card = page.locator("#tasks .image-task").first
    expect(card.locator("img")).to_have_count(1, timeout=20_000)
    shoot(page, f"edit-{provider}", is_readme=provider == "dashscope")
    card.locator("a").first.click()
    expect(page.get_by_text("修改说明")).to_be_visible()
    expect(page.locator("#image-prompt")).to_have_text("把天空改成晚霞")
    page.get_by_role("link", name="图片 1").click()
    expect(page.locator(".edits img")).to_have_count(1)
    shoot(page, f"edit-source-{provider}", full_page=True)


def test_a_picture_sent_in_the_chat_can_be_edited(page, live_server, tmp_path):
    ask_about_a_picture(page, live_server, tmp_path)
    expect(page.locator("article.answer[data-status=done]")).to_have_count(1)
    page.locator(".message-pictures").get_by_role("link", name="改这张图").click()
    page.get_by_label("想怎么改").fill("加一只猫")
    page.get_by_role("button", name="开始改").click()
    expect(page.locator("#tasks .image-task img")).to_have_count(1, timeout=20_000)
    page.get_by_role("link", name="图库").click()
    expect(page.locator(".gallery-item")).to_have_count(1)


def test_a_message_sent_while_its_picture_uploads_waits_for_it(page, live_server, tmp_path):
    page.goto(live_server.url + "/")
    page.route("**/attachments", lambda route: (page.wait_for_timeout(500), route.continue_()))
    page.locator("#picture-input").set_input_files(a_png_file(tmp_path))
    ask(page, "这是什么颜色？")
    expect(page.locator("article.answer[data-status=done]").last).to_contain_text("看到 1 张图片。")
