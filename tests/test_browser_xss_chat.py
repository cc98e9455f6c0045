"""Messages, answers, titles and system prompts never run as script, in chromium."""
import pytest
from playwright.sync_api import expect

from browser_helpers import live_db
from fake_upstream import REPLY
from models import Conversation, Message
from services.chat import title_from
from views.chat import SIDEBAR_PAGE
from xss import BREAKOUTS, PAYLOADS, assert_nothing_ran, joined, watch

pytestmark = pytest.mark.browser

# An answer's tokens are escaped one by one: an element inside streamed text means one was not.
WATCH_STREAM = """
window.__streamed = {texts: 0, elements: []};
new MutationObserver(records => {
  for (const record of records) {
    if (!record.target.closest || !record.target.closest(".streaming-text, .reasoning-text")) continue;
    for (const node of record.addedNodes) {
      if (node.nodeType === 1) window.__streamed.elements.push(node.outerHTML.slice(0, 150));
      else window.__streamed.texts++;
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


# Tokens are escaped one by one, whatever they hold: the breakouts and htmx's own attributes
# stand for all the payloads here (each one streams for a while).
STREAMED = BREAKOUTS + [p for p in PAYLOADS if ("hx-" in p or "sse-" in p) and p not in BREAKOUTS]


def page_title(title):
    return " ".join(f"{title} · 墨言 Moyan".split())


def user_texts(page):
    return page.locator("article:not(.answer) > div:first-child").all_text_contents()


def test_an_answer_echoing_payloads_never_runs_while_streaming_or_after(page, live_server):
    watch(page)
    page.add_init_script(WATCH_STREAM)
    text = joined(STREAMED)
    page.goto(live_server.url + "/")
    page.get_by_label("消息").fill(text)
    page.get_by_label("消息").press("Enter")
    expect(page.locator("article.answer .markdown")).to_contain_text("完毕", timeout=30_000)
    streamed = page.evaluate("window.__streamed")
    assert streamed["texts"] > 10, "the answer should have come in pieces"
    assert streamed["elements"] == []
    assert user_texts(page) == [text]
    expect(page).to_have_title(page_title(title_from(text)))
    assert_nothing_ran(page, "after streaming")
    page.reload()
    expect(page.locator("article.answer .markdown")).to_contain_text("完毕")
    assert_nothing_ran(page, "after reload")


def test_saved_messages_answers_and_system_prompts_never_run(page, live_server):
    watch(page)
    texts = PAYLOADS + [joined()]  # each alone, then all in one Markdown text
    per_page = 20  # question and answer pairs: a conversation opens at its last 40 messages
    groups = [texts[i:i + per_page] for i in range(0, len(texts), per_page)]
    with live_db(page, live_server):
        conversations = [Conversation.create(title="全部", system_prompt=joined(), model="qwen-plus")
                         for _ in groups]
        for conversation, group in zip(conversations, groups):
            for payload in group:
                Message.create(conversation=conversation, role="user", content=payload)
                Message.create(conversation=conversation, role="assistant", content=REPLY(payload),
                               reasoning=payload, error=payload, status=Message.ERROR,
                               provider="dashscope", model="qwen-plus")
    for conversation, group in zip(conversations, groups):
        page.goto(f"{live_server.url}/c/{conversation.id}")
        expect(page.get_by_label("系统提示词")).to_have_value(joined())
        assert user_texts(page) == group
        expect(page.locator(".markdown")).to_have_count(len(group))
        assert_nothing_ran(page, "conversation page")
        for payload in [p for p in group if p in BREAKOUTS]:
            article = page.locator("article", has=page.get_by_text(payload, exact=True)).first
            article.get_by_role("button", name="编辑").click()
            expect(page.get_by_label("修改消息")).to_have_value(payload)
            assert_nothing_ran(page, f"edit box: {payload!r}")
            page.get_by_role("button", name="取消").click()


def test_conversation_titles_never_run_in_the_sidebar_or_the_window_title(page, live_server):
    watch(page)
    with live_db(page, live_server):
        ids = [Conversation.create(title=payload).id for payload in PAYLOADS]
    page.goto(live_server.url + "/")
    shown = page.locator("#conversation-list li > a").all_text_contents()
    assert shown == PAYLOADS[::-1][:SIDEBAR_PAGE]  # the rest load as the list scrolls
    assert_nothing_ran(page, "sidebar")
    listed = list(zip(ids, PAYLOADS))[::-1][:SIDEBAR_PAGE]
    opened = [(i, p) for i, p in listed if p in BREAKOUTS]
    for conversation_id, payload in opened:
        page.locator(f"#conv-{conversation_id} > a").click()  # htmx swaps in its <title> too
        expect(page).to_have_title(page_title(payload))
        assert_nothing_ran(page, f"opened from the sidebar: {payload!r}")
    for conversation_id, payload in opened:
        page.goto(f"{live_server.url}/c/{conversation_id}", wait_until="domcontentloaded")
        expect(page).to_have_title(page_title(payload))
        assert_nothing_ran(page, f"page: {payload!r}")


def test_a_title_typed_into_the_rename_box_never_runs(page, live_server):
    watch(page)
    with live_db(page, live_server):
        conversation_id = Conversation.create(title="改名前").id
    page.goto(live_server.url + "/")
    item = page.locator(f"#conv-{conversation_id}")
    for payload in BREAKOUTS:
        item.locator("summary").click()
        item.locator(".rename-button").click()
        box = item.get_by_role("textbox", name="新的标题")
        box.fill(payload)
        box.press("Enter")
        expect(item.locator("a")).to_have_text(" ".join(payload.split()))
        assert_nothing_ran(page, f"renamed to {payload!r}")
