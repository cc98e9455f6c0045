"""Pictures and words in one loop (issue 16): from an answer to a painting, and back."""
import pytest

from models import Conversation, Message

HX = {"HX-Request": "true"}


def an_answer(content):
    conversation = Conversation.create(title="花店")
    Message.create(conversation=conversation, role="user", content="描述一间花店")
    return Message.create(conversation=conversation, role="assistant", content=content, model="qwen-plus")


def test_every_answer_offers_to_paint_from_its_text(client):
    answer = an_answer("一间有着精致窗户的花店")
    page = client.get(f"/c/{answer.conversation_id}").get_data(as_text=True)
    assert f'href="/images?answer={answer.id}"' in page
    assert "用这段画图" in page


def test_painting_from_an_answer_fills_in_its_text(client):
    answer = an_answer("一间有着精致窗户的花店")
    page = client.get(f"/images?answer={answer.id}").get_data(as_text=True)
    assert ">一间有着精致窗户的花店</textarea>" in page
    assert "已截取" not in page


def test_the_selected_part_of_an_answer_is_the_prompt(client):
    answer = an_answer("第一段。\n\n木门和花朵")
    page = client.get(f"/images?answer={answer.id}&selection=木门和花朵").get_data(as_text=True)
    assert ">木门和花朵</textarea>" in page


def test_a_long_answer_is_cut_to_the_models_prompt_limit_with_a_notice(client):
    answer = an_answer("花" * 1000)
    page = client.get(f"/images?answer={answer.id}").get_data(as_text=True)
    assert ">" + "花" * 800 + "</textarea>" in page
    assert "这段文字有 1,000 字，wan2.2-t2i-flash 的提示词最多 800 字，已截取前 800 字。" in page


def test_painting_from_a_missing_answer_is_not_found(client):
    assert client.get("/images?answer=999").status_code == 404
