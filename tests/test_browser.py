"""What a person does in the page, in Debian's chromium, against Moyan under gunicorn."""
import re
import sqlite3

import pytest
from playwright.sync_api import expect

from browser_helpers import answer, ask, live_db, open_chat
from fake_upstream import REPLY
from helpers import answer_calls
from models import Conversation

pytestmark = pytest.mark.browser

SLOW_ANSWER = REPLY("你好")  # qwen-slow adds a tail; its start is the same


def saved_status(live_server, message_id):
    with sqlite3.connect(live_server.env["MOYAN_DATA_DIR"] + "/moyan.db") as db:
        return db.execute("SELECT status, content FROM message WHERE id = ?", (message_id,)).fetchone()


def test_first_visit_loads_everything_from_moyan_itself(page, live_server):
    hosts = []
    page.on("request", lambda request: hosts.append(request.url.split("/")[2]))
    page.goto(live_server.url + "/")
    expect(page.get_by_text("在下面输入第一句话开始新对话")).to_be_visible()
    expect(page).to_have_title(re.compile("墨言"))
    assert set(hosts) == {f"127.0.0.1:{live_server.port}"}
    assert page.evaluate("typeof htmx") == "object"


def test_saving_a_key_and_testing_the_connection(page, live_server, fake):
    page.goto(live_server.url + "/settings")
    section = page.locator("#settings-dashscope")
    section.get_by_label("API Key").fill("sk-fake9999browser8888key7777wxyz")
    section.get_by_role("button", name="保存").click()
    expect(section.get_by_role("status").first).to_contain_text("已保存")
    expect(section).to_contain_text("wxyz")
    expect(section.get_by_label("API Key")).to_have_value("")
    assert "sk-fake9999browser8888key7777wxyz" not in page.content()
    page.locator("#settings-dashscope").get_by_role("button", name="测试连接").click()
    expect(page.locator("#dashscope-connection")).to_contain_text("连接成功")
    options = page.locator("#dashscope-model-ids option")
    expect(options.first).to_be_attached()
    assert "qwq-plus" in options.evaluate_all("els => els.map(e => e.value)")


def test_a_wrong_key_is_explained_on_test_connection(page, live_server):
    page.goto(live_server.url + "/settings")
    section = page.locator("#settings-openrouter")
    section.get_by_label("API Key").fill("sk-or-v1-wrong-key-000")
    section.get_by_role("button", name="保存").click()
    expect(section.get_by_role("status").first).to_contain_text("已保存")
    section.get_by_role("button", name="测试连接").click()
    expect(page.locator("#openrouter-connection")).to_contain_text("OpenRouter API Key 无效")


def test_an_answer_streams_in_token_by_token_then_shows_as_markdown(page, live_server):
    open_chat(page, live_server, model="qwen-slow")
    ask(page, "你好")
    expect(page.locator("article").first).to_contain_text("你好")
    expect(page.get_by_label("消息")).to_have_value("")
    streaming = page.locator(".streaming-text")
    expect(streaming).to_contain_text("收到")
    seen = streaming.inner_text()
    assert len(seen) < len(SLOW_ANSWER), "the text should appear piece by piece"
    expect(streaming).not_to_have_text(seen)  # it grows
    expect(answer(page).locator("pre.highlight")).to_be_visible(timeout=20_000)
    expect(answer(page)).to_contain_text("这是一段很长的回答")
    expect(page.locator("[sse-connect]")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/c/\d+$"))
    expect(page.locator("#conversation-list")).to_contain_text("你好")


def test_reloading_in_the_middle_still_ends_with_the_whole_answer(page, live_server, fake):
    open_chat(page, live_server, model="qwen-slow")
    ask(page, "你好")
    expect(page.locator(".streaming-text")).to_contain_text("收到")
    page.reload()
    expect(answer(page).locator(".markdown")).to_contain_text("这是一段很长的回答", timeout=20_000)
    text = answer(page).locator(".markdown").inner_text()
    assert text.count("收到：你好") == 1
    assert len(answer_calls(fake)) == 1


def test_stop_keeps_the_partial_answer(page, live_server):
    open_chat(page, live_server, model="qwen-slow")
    ask(page, "你好")
    expect(page.locator(".streaming-text")).to_contain_text("收到")
    page.get_by_role("button", name="停止").click()
    expect(answer(page)).to_contain_text("已停止生成")
    expect(answer(page)).to_contain_text("收到")
    message_id = answer(page).get_attribute("id").split("-")[1]
    status, content = saved_status(live_server, message_id)
    assert status == "stopped" and content.startswith("收到")


def test_regenerate_replaces_the_answer(page, live_server, fake):
    open_chat(page, live_server)
    ask(page, "你好")
    expect(answer(page).locator("pre.highlight")).to_be_visible()
    first_id = answer(page).get_attribute("id")
    page.get_by_role("button", name="重新生成").click()
    expect(page.locator(f"#{first_id}")).to_have_count(0)
    expect(answer(page).locator("pre.highlight")).to_be_visible()
    expect(page.locator("article.answer")).to_have_count(1)


def test_openrouter_answers_from_the_same_page(page, live_server):
    page.goto(live_server.url + "/")
    page.get_by_label("服务").select_option("openrouter")
    page.get_by_label("模型").fill("openai/gpt-4o")
    ask(page, "你好")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：你好")
    expect(answer(page)).to_contain_text("openai/gpt-4o")
    expect(answer(page)).to_contain_text("tokens")


def test_a_broken_answer_keeps_its_text_and_explains_in_chinese(page, live_server):
    open_chat(page, live_server, model="fault-drop")
    ask(page, "你好")
    expect(answer(page).locator(".message-error")).to_contain_text("连接中断")
    expect(answer(page).locator(".markdown")).to_contain_text("收到")
    page.get_by_label("模型").fill("qwen-plus")
    ask(page, "再试一次")
    expect(answer(page).locator(".markdown")).to_contain_text("收到：再试一次")


def test_shift_enter_is_a_newline_and_enter_sends(page, live_server):
    open_chat(page, live_server)
    box = page.get_by_label("消息")
    box.fill("第一行")
    box.press("Shift+Enter")
    box.type("第二行")
    expect(box).to_have_value("第一行\n第二行")
    box.press("Enter")
    expect(page.locator("article").first).to_contain_text("第二行")


def two_conversations(page, live_server, first, second):
    """Start a conversation with `first`, then a new one with `second`, each answered."""
    for text in (first, second):
        open_chat(page, live_server)
        ask(page, text)
        expect(answer(page).locator(".markdown")).to_be_visible()


def test_rename_search_and_delete_in_the_sidebar(page, live_server):
    two_conversations(page, live_server, "关于花店", "关于天气")
    items = page.locator("#conversation-list li")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("关于天气")
    items.first.get_by_label("「收到：关于天气」的操作").click()
    items.first.get_by_role("button", name="重命名「收到：关于天气」").click()
    box = items.first.get_by_role("textbox", name="新的标题")
    expect(box).to_have_value("收到：关于天气")
    box.fill("天气闲聊")
    box.press("Enter")
    expect(items.first).to_contain_text("天气闲聊")
    page.get_by_label("搜索对话").fill("花店")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("关于花店")
    page.get_by_label("搜索对话").fill("")
    expect(items).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    items.last.get_by_label("「收到：关于花店」的操作").click()
    page.get_by_role("button", name="删除「收到：关于花店」").click()
    expect(items).to_have_count(1)


def test_the_sidebar_gives_titles_the_row_and_marks_the_open_conversation(page, live_server):
    page.set_viewport_size({"width": 1440, "height": 900})
    with live_db(page, live_server):
        first = Conversation.create(title="一个相当长的对话标题，足够占满侧栏的一整行")
        second = Conversation.create(title="第二个对话")
    page.goto(f"{live_server.url}/c/{first.id}")
    link = page.locator(f"#conv-{first.id} a")
    expect(link).to_have_attribute("aria-current", "page")
    row = page.locator(f"#conv-{first.id}").bounding_box()
    assert link.bounding_box()["width"] > row["width"] - 20  # no room kept for hidden buttons
    page.locator(f"#conv-{second.id} a").click()
    expect(page.locator(f"#conv-{second.id} a")).to_have_attribute("aria-current", "page")
    expect(link).not_to_have_attribute("aria-current", "page")
    current = page.locator(f"#conv-{second.id}").evaluate("li => getComputedStyle(li).backgroundColor")
    other = page.locator(f"#conv-{first.id}").evaluate("li => getComputedStyle(li).backgroundColor")
    assert current != other
    page.go_back()
    expect(link).to_have_attribute("aria-current", "page")


def test_renaming_in_place_is_prefilled_and_esc_cancels(page, live_server):
    with live_db(page, live_server):
        conversation = Conversation.create(title="旧标题")
    page.goto(live_server.url + "/")
    item = page.locator(f"#conv-{conversation.id}")
    item.get_by_label("「旧标题」的操作").click()
    item.get_by_role("button", name="重命名「旧标题」").click()
    box = item.get_by_role("textbox", name="新的标题")
    expect(box).to_be_focused()
    expect(box).to_have_value("旧标题")
    box.fill("不要这个")
    box.press("Escape")
    expect(box).to_have_count(0)
    expect(item.locator("a")).to_have_text("旧标题")
    item.get_by_label("「旧标题」的操作").click()
    item.get_by_role("button", name="重命名「旧标题」").click()
    box.fill("新标题")
    box.press("Enter")
    expect(item.locator("a")).to_have_text("新标题")
    with live_db(page, live_server):
        assert Conversation.get_by_id(conversation.id).title == "新标题"


def test_no_icon_depends_on_an_emoji_font(page, live_server):
    with live_db(page, live_server):
        Conversation.create(title="置顶的对话", is_pinned=True)
    page.goto(live_server.url + "/")
    expect(page.get_by_label("已置顶").locator("svg")).to_be_visible()
    text = page.evaluate("document.body.innerText")
    assert not re.search("[\U0001F000-\U0001FFFF\u2600-\u27BF\u25A0-\u25FF\u2190-\u21FF]", text)


def test_keyboard_shortcuts_stop_search_and_start_a_new_chat(page, live_server):
    open_chat(page, live_server, model="qwen-slow")
    ask(page, "你好")
    expect(page.locator(".streaming-text")).to_contain_text("收到")
    page.keyboard.press("Escape")
    expect(answer(page)).to_contain_text("已停止生成")
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")
    expect(page.get_by_label("搜索对话")).to_be_focused()
    page.keyboard.press("Control+K")
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_text("在下面输入第一句话开始新对话")).to_be_visible()
    expect(page.get_by_label("消息")).to_be_focused()


def test_copy_buttons_copy_the_code_and_the_answer(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_chat(page, live_server)
    ask(page, "你好")
    code_copy = answer(page).get_by_role("button", name="复制代码")
    expect(code_copy).to_be_visible()
    code_copy.click()
    expect(code_copy).to_have_text("已复制")
    assert page.evaluate("navigator.clipboard.readText()") == 'print("你好")'
    answer(page).locator(".answer-copy").click()
    assert "收到：你好" in page.evaluate("navigator.clipboard.readText()")
    expect(answer(page).locator("pre")).to_have_attribute("data-lang", "python")


def test_no_page_or_action_logs_a_console_error(page, live_server):
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    two_conversations(page, live_server, "第一段", "第二段")
    first = page.locator("#conversation-list li").last
    first.locator("a").click()
    expect(first.locator("a")).to_have_attribute("aria-current", "page")
    expect(page.locator("#messages")).to_contain_text("第一段")
    page.locator("#theme-toggle").click()
    for path in ("/images", "/gallery", "/usage", "/settings"):
        page.goto(live_server.url + path)
        expect(page.locator("main")).to_be_visible()
    page.get_by_label("新对话默认使用").select_option("openrouter")
    expect(page.locator("#settings-general").get_by_role("status")).to_be_visible()
    section = page.locator("#settings-dashscope")
    section.get_by_label("API Key").fill("sk-fake9999console8888key7777wxyz")
    section.get_by_role("button", name="保存").click()
    expect(section.get_by_role("status").first).to_contain_text("已保存")
    assert errors == []


def test_importing_an_export_twice_says_it_was_skipped(page, live_server):
    open_chat(page, live_server)
    ask(page, "要导出的对话")
    expect(answer(page).locator(".markdown")).to_be_visible()
    exported = page.request.get(live_server.url + "/export.json").body()
    page.goto(live_server.url + "/settings")
    page.get_by_label("导入对话").set_input_files(
        {"name": "all.json", "mimeType": "application/json", "buffer": exported})
    page.get_by_role("button", name="导入", exact=True).click()
    expect(page.locator("#import-result")).to_contain_text("1 段对话已经在这里，跳过了")
    page.goto(live_server.url + "/")
    expect(page.locator("#conversation-list li")).to_have_count(1)

