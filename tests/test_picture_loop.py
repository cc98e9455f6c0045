"""Pictures and words in one loop (issue 16): from an answer to a painting, and back."""
import datetime

from fake_upstream import WAN_FAILED_MESSAGE
from helpers import paint, wait_for
from models import Conversation, ImageTask, Message, now
from services.failures import error_text


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


# -- the painting form (issue 16, point 2) ---------------------------------------

def test_openrouter_is_asked_once_for_each_picture(client, fake):
    paint(client, "一只猫", provider="openrouter", model="google/gemini-2.5-flash-image", n="3")
    task = wait_for(ImageTask.get().id)
    assert task.status == ImageTask.SUCCEEDED, task.error
    assert task.images().count() == 3
    calls = [r for r in fake.requests if r["path"].endswith("/chat/completions")]
    assert len(calls) == 3


def test_a_wan_model_is_refused_for_openrouter_with_a_sentence(client, fake):
    response = paint(client, "一只猫", provider="openrouter", model="wan2.2-t2i-flash")
    assert response.status_code == 422
    assert "厂商/模型" in response.text
    assert not ImageTask.select().exists()


def test_the_form_knows_each_providers_default_image_model(client):
    page = client.get("/images").get_data(as_text=True)
    assert 'data-default-model="google/gemini-2.5-flash-image"' in page
    assert 'list="paint-model-ids-dashscope"' in page


def test_the_time_of_a_task_counts_from_the_request_queue_included(app):
    created = now() - datetime.timedelta(seconds=30)
    task = ImageTask.create(model="wan2.2-t2i-flash", prompt="花", created_at=created,
                            submitted_at=now(), status=ImageTask.PENDING)
    assert task.seconds_elapsed() >= 30


def test_a_failed_task_is_explained_in_chinese_without_the_providers_english(client, fake):
    paint(client, "画 [fail]")
    task = wait_for(ImageTask.get().id)
    assert error_text(task.error).startswith("服务商认为参数有误")
    assert WAN_FAILED_MESSAGE not in error_text(task.error)


def test_a_partly_failed_task_says_in_chinese_what_went_wrong(client, fake):
    paint(client, "画 [partial]", n="2")
    task = wait_for(ImageTask.get().id)
    assert error_text(task.error) == "生成了 1 张，另有 1 张失败：服务商生成超时，请稍后重试。"
