"""Hardening II, the answer path: Markdown is rendered once and never by the worker for
long, and every answer ends with a final status whatever the provider sends.
docs/RELIABILITY.md lists these tests (test_hardening_upstream.py keeps it in step)."""
import pytest

from fake_upstream import REPLY
from models import Conversation, Message
from services.markdown import IN_PROCESS_LIMIT, render, render_here
from helpers import HX, ask, save_settings


def test_an_answer_is_rendered_once_when_it_is_saved_and_then_shown_as_stored(client, fake):
    message = ask(client, "你好")
    assert "<pre" in message.content_html  # the reply's code block, highlighted
    Message.update(content_html="<p>保存时渲染好的</p>").where(Message.id == message.id).execute()
    assert "保存时渲染好的" in client.get(f"/c/{message.conversation_id}", headers=HX).text


def test_a_text_too_long_for_the_worker_is_rendered_by_a_child_process_all_the_same():
    text = "**粗体** " + "![" * IN_PROCESS_LIMIT
    assert len(text) > IN_PROCESS_LIMIT
    html = render(text)
    assert html == render_here(text) and "<strong>粗体</strong>" in html


def test_a_long_answer_of_markdown_traps_is_saved_with_its_html(client, fake):
    message = ask(client, "![" * (IN_PROCESS_LIMIT // 2 + 10))
    assert len(message.content) > IN_PROCESS_LIMIT and message.status == Message.DONE
    assert message.content_html.startswith("<p>") and "<img" not in message.content_html


@pytest.mark.parametrize("fault", ["[title-refused]", "[title-malformed]"])
def test_a_failed_title_call_keeps_the_first_words_and_the_answer_ends(client, fake, fault):
    message = ask(client, f"你好 {fault}")
    assert Conversation.get_by_id(message.conversation_id).title == f"你好 {fault}"
    assert message.status == Message.DONE and message.content == REPLY(f"你好 {fault}")


def test_a_title_sent_as_a_list_of_content_parts_is_read(client, fake):
    message = ask(client, "你好 [title-list]")
    assert Conversation.get_by_id(message.conversation_id).title == "标题"
    assert message.status == Message.DONE


def test_a_usage_that_is_not_an_object_still_ends_the_answer(client, fake):
    message = ask(client, "你好", model="fault-usage-junk")
    assert message.status == Message.DONE and message.is_usage_estimate  # counted, marked ≈


def test_a_models_list_of_plain_strings_still_tests_the_connection(client, fake):
    save_settings(client, "dashscope", region="custom", base_url=fake.dashscope_base, api_key="sk-models-strings-0000")
    response = client.post("/settings/dashscope/test", headers=HX)
    assert response.status_code == 200 and "连接成功" in response.text
