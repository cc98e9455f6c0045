"""Moderation cannot brick a conversation: what it refused stays out of later requests."""

import pytest

from fake_upstream import FLAG_OUTPUT, FLAGGED, FLAGGED_BAILIAN, REPLY
from helpers import HX, PROVIDERS, answer_calls, answer_id, ask, imported, read_stream, send, sent_texts
from models import Conversation, Message
from services.failures import error_text


@pytest.mark.parametrize("provider, model", PROVIDERS)
def test_a_refused_question_is_marked_and_the_next_message_simply_works(client, fake, provider, model):
    refused = ask(client, f"第一句 {FLAGGED}", provider=provider, model=model)
    assert refused.status == Message.ERROR and "审核" in error_text(refused.error)
    question = Message.question_of(refused.id)
    assert (question.is_excluded, question.moderated) == (True, "input")
    answer = ask(client, "第二句", conversation_id=str(refused.conversation_id), provider=provider, model=model)
    assert answer.status == Message.DONE
    assert answer.content == REPLY("第二句")
    assert sent_texts(fake) == ["第二句"]


@pytest.mark.parametrize("provider, model", PROVIDERS)
def test_the_fake_refuses_a_flagged_phrase_anywhere_in_the_history(client, fake, provider, model):
    first = ask(client, "你好", provider=provider, model=model)
    Message.update(content=f"旧回答 {FLAGGED}").where(Message.id == first.id).execute()
    second = ask(client, "再问一句", conversation_id=str(first.conversation_id), provider=provider, model=model)
    assert second.status == Message.ERROR and "审核" in error_text(second.error)


@pytest.mark.parametrize("provider, model", PROVIDERS)
def test_an_answer_cut_by_output_moderation_is_kept_marked_and_left_out(client, fake, provider, model):
    cut = ask(client, f"讲个故事 {FLAG_OUTPUT}", provider=provider, model=model)
    assert cut.content.startswith(FLAGGED)
    assert (cut.is_excluded, cut.moderated) == (True, "output")
    page = client.get(f"/c/{cut.conversation_id}").text
    assert "这段回答被审核中断" in page
    answer = ask(client, "继续", conversation_id=str(cut.conversation_id), provider=provider, model=model)
    assert answer.status == Message.DONE
    assert sent_texts(fake) == [f"讲个故事 {FLAG_OUTPUT}", "继续"]


def test_the_done_event_marks_the_refused_question_in_the_page(client, fake):
    response = send(client, f"你好 {FLAGGED}")
    stream = read_stream(client, answer_id(response))
    assert "未通过审核，未发送给模型" in stream
    assert 'hx-swap-oob="true"' in stream


def test_any_message_can_be_left_out_of_the_context_and_put_back(client, fake):
    first = ask(client, "第一问")
    conversation_id = str(first.conversation_id)
    question = Message.question_of(first.id)
    response = client.post(f"/m/{question.id}/context", headers=HX)
    assert "放回上下文" in response.text and "data-excluded" in response.text
    client.post(f"/m/{first.id}/context", headers=HX)
    ask(client, "第二问", conversation_id=conversation_id)
    assert sent_texts(fake) == ["第二问"]
    client.post(f"/m/{question.id}/context", headers=HX)
    client.post(f"/m/{first.id}/context", headers=HX)
    ask(client, "第三问", conversation_id=conversation_id)
    assert sent_texts(fake)[:2] == ["第一问", REPLY("第一问")]


def test_putting_a_refused_question_back_sends_it_again(client, fake):
    refused = ask(client, f"问题 {FLAGGED}")
    question = Message.question_of(refused.id)
    client.post(f"/m/{question.id}/context", headers=HX)
    again = ask(client, "下一句", conversation_id=str(refused.conversation_id))
    assert again.status == Message.ERROR and "审核" in error_text(again.error)


def test_editing_a_refused_question_sends_the_new_text(client, fake):
    refused = ask(client, f"问题 {FLAGGED}")
    question = Message.question_of(refused.id)
    client.post(f"/m/{question.id}/edit", data={"text": "换个说法"}, headers=HX)
    answer = Message.select().where(Message.role == "assistant").order_by(Message.id.desc()).get()
    read_stream(client, answer.id)
    assert Message.get_by_id(answer.id).status == Message.DONE
    edited = Message.question_of(answer.id)
    assert (edited.content, edited.is_excluded) == ("换个说法", False)
    assert Message.get_by_id(question.id).is_excluded  # the refused version keeps its mark
    assert sent_texts(fake) == ["换个说法"]


def test_a_refused_question_can_be_resent_to_the_other_provider(client, fake):
    refused = ask(client, "不太敢问的问题")
    question = Message.question_of(refused.id)
    Message.update(is_excluded=True, moderated="input").where(Message.id == question.id).execute()
    response = client.post(f"/m/{question.id}/resend", headers=HX)
    assert response.status_code == 200
    read_stream(client, answer_id(response))
    call = answer_calls(fake)[-1]
    assert call["path"].startswith("/openrouter/")
    assert [m["content"] for m in call["json"]["messages"]] == [REPLY("不太敢问的问题"), "不太敢问的问题"]
    assert Conversation.get_by_id(refused.conversation_id).provider == "openrouter"
    assert 'id="chat-options"' in response.text


def test_left_out_messages_are_exported_and_imported_with_their_mark(client, fake):
    refused = ask(client, f"问题 {FLAGGED}")
    conversation_id = refused.conversation_id
    markdown = client.get(f"/c/{conversation_id}/export.md").get_data(as_text=True)
    assert "不在上下文中" in markdown
    exported = client.get(f"/c/{conversation_id}/export.json").get_data()
    client.delete(f"/c/{conversation_id}", headers=HX)  # the same export is skipped while it is here
    assert "已导入 1 段对话" in imported(client, exported).text
    copy = Message.get(Message.role == "user")
    assert (copy.is_excluded, copy.moderated) == (True, "input")


def test_the_two_services_judge_differently_in_the_fake_as_in_life(client, fake):
    refused = ask(client, f"问题 {FLAGGED_BAILIAN}")
    assert refused.status == Message.ERROR
    answered = ask(client, f"问题 {FLAGGED_BAILIAN}", provider="openrouter", model="openai/gpt-4o")
    assert answered.status == Message.DONE
