"""Pictures in the chat: uploaded and checked, sent as image_url parts to a model that can see."""
import io
import json
import os
import struct
import zlib

import pytest

from helpers import DASHSCOPE_KEY, HX, answer_calls, ask, imported, last_task, wait_for
from fake_upstream import make_png
from models import Attachment, Message
from services.failures import error_text


def upload(client, *files, attached=()):
    data = {"pictures": [(io.BytesIO(content), name) for name, content in files],
            "attachment": [str(i) for i in attached]}
    return client.post("/attachments", data=data, headers=HX, content_type="multipart/form-data")


def a_picture(client, name="猫.png", content=None):
    response = upload(client, (name, content or make_png(64, 48)))
    assert response.status_code == 200, response.text
    return Attachment.select().order_by(Attachment.id.desc()).get()


def header_only_png(width, height):
    """A PNG whose header claims `width`×`height`: refused before anything is decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def send(client, text, pictures=(), **options):
    """Ask with `pictures` attached; return the finished answer."""
    return ask(client, text, attachment=[str(p.id) for p in pictures], **options)


def sent_pictures(call):
    return [part["image_url"]["url"] for m in call["json"]["messages"] if isinstance(m["content"], list)
            for part in m["content"] if part["type"] == "image_url"]


def test_an_uploaded_picture_is_kept_with_a_thumbnail_and_shown_as_a_chip(app, client):
    response = upload(client, ("猫.png", make_png(64, 48)))
    picture = Attachment.get()
    assert f'name="attachment" value="{picture.id}"' in response.text
    assert (picture.content_type, picture.width, picture.height, picture.message) == ("image/png", 64, 48, None)
    folder = os.path.join(app.config["DATA_DIR"], "images")
    with open(os.path.join(folder, picture.thumbnail), "rb") as f:
        assert f.read(12)[8:12] == b"WEBP"
    assert client.get(f"/files/{picture.file}").data == make_png(64, 48)


@pytest.mark.parametrize("name, content, sentence", [
    ("a.txt", b"hello, not a picture", "不是 PNG、JPEG 或 WebP 图片"),
    ("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "不是 PNG、JPEG 或 WebP 图片"),
    ("big.png", make_png(8, 8) + b"\x00" * (10 * 1024 * 1024), "超过 10 MB"),
    ("huge.png", header_only_png(6000, 6000), "6000×6000 像素"),
    ("tiny.png", make_png(4, 4), "4×4 像素"),
])
def test_what_is_not_a_usable_picture_is_refused_with_a_sentence(client, name, content, sentence):
    response = upload(client, (name, content))
    assert response.status_code == 422
    assert sentence in response.text
    assert not Attachment.select().exists()


def test_a_message_takes_at_most_four_pictures(client):
    first = [a_picture(client) for _ in range(3)]
    response = upload(client, ("a.png", make_png()), ("b.png", make_png()), attached=[p.id for p in first])
    assert response.status_code == 422
    assert "最多附 4 张图片" in response.text


def test_pictures_go_as_data_urls_to_the_default_vision_model_when_the_chosen_one_cannot_see(client, fake):
    picture = a_picture(client)
    answer = send(client, "这是什么？", [picture])
    call = answer_calls(fake)[-1]
    assert call["json"]["model"] == "qwen3-vl-plus"
    assert call["json"]["messages"][-1]["content"][0] == {"type": "text", "text": "这是什么？"}
    assert sent_pictures(call) == ["data:image/png;base64,iVBORw0KGgo" + sent_pictures(call)[0][33:]]
    assert (answer.model, answer.is_vision_fallback) == ("qwen3-vl-plus", True)
    assert answer.content.startswith("看到 1 张图片。")
    assert Attachment.get_by_id(picture.id).message_id == answer.id - 1


def test_a_model_that_can_see_keeps_the_pictures(client, fake):
    answer = send(client, "这是什么？", [a_picture(client)], model="qwen-vl-max")
    assert (answer.model, answer.is_vision_fallback) == ("qwen-vl-max", False)
    assert answer.status == Message.DONE


def test_a_model_listed_in_the_settings_as_seeing_keeps_the_pictures(client, fake):
    client.post("/settings/dashscope", data={"seeing_models": "qwen-max"}, headers=HX)
    send(client, "这是什么？", [a_picture(client)], model="qwen-max")
    assert answer_calls(fake)[-1]["json"]["model"] == "qwen-max"
    assert "不支持" not in error_text(Message.select().order_by(Message.id.desc()).get().error)


@pytest.mark.parametrize("model, answered_by", [
    ("qwen/qwen3-32b", "google/gemini-2.5-flash"),
    ("openai/gpt-4o", "openai/gpt-4o"),
])
def test_openrouter_says_in_its_model_list_which_models_can_see(client, fake, model, answered_by):
    answer = send(client, "这是什么？", [a_picture(client)], provider="openrouter", model=model)
    assert answer.model == answered_by
    assert answer.status == Message.DONE, answer.error
    assert answer.content.startswith("看到 1 张图片。")


def test_the_fake_refuses_pictures_for_a_model_that_cannot_see(client, fake):
    """Without the routing, the request would fail: the fake checks it."""
    import requests
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    response = requests.post(fake.dashscope_base + "/compatible-mode/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {DASHSCOPE_KEY}"}, timeout=5)
    assert response.status_code == 400


def test_pictures_stay_in_the_history_of_later_turns(client, fake):
    first = send(client, "这是什么？", [a_picture(client)])
    send(client, "再说说颜色", conversation_id=str(first.conversation_id))
    call = answer_calls(fake)[-1]
    assert len(sent_pictures(call)) == 1
    assert call["json"]["model"] == "qwen3-vl-plus"


def test_the_settings_limit_how_many_pictures_of_the_history_are_sent(client, fake):
    client.post("/settings/general", data={"chat_provider": "dashscope", "history_pictures": "1"}, headers=HX)
    first = send(client, "两张图", [a_picture(client), a_picture(client)])
    send(client, "再说说", conversation_id=str(first.conversation_id))
    assert len(sent_pictures(answer_calls(fake)[-1])) == 1
    client.post("/settings/general", data={"chat_provider": "dashscope", "history_pictures": "0"}, headers=HX)
    later = send(client, "只说文字", conversation_id=str(first.conversation_id))
    assert sent_pictures(answer_calls(fake)[-1]) == []
    assert later.model == "qwen-plus"


def test_the_pictures_are_shown_in_the_message(client, fake):
    picture = a_picture(client)
    answer = send(client, "这是什么？", [picture])
    page = client.get(f"/c/{answer.conversation_id}").get_data(as_text=True)
    assert f'src="/files/{picture.thumbnail}"' in page
    assert "看图模型 qwen3-vl-plus" in page


def test_a_picture_already_sent_is_not_taken_again(client, fake):
    picture = a_picture(client)
    send(client, "第一条", [picture])
    send(client, "第二条", [picture])
    assert Attachment.select().count() == 1
    assert Attachment.get().message.content == "第一条"


def test_pictures_are_part_of_the_export_and_come_back_with_the_import(client, fake):
    picture = a_picture(client)
    answer = send(client, "这是什么？", [picture])
    exported = client.get(f"/c/{answer.conversation_id}/export.json").get_json()
    question = exported["conversations"][0]["messages"][0]
    assert question["pictures"][0]["content_type"] == "image/png"
    exported["conversations"][0]["export_id"] = "f" * 32  # another conversation: not skipped as the same
    assert "已导入 1 段对话" in imported(client, json.dumps(exported).encode()).text
    copy_of_question = Message.select().where(Message.content == "这是什么？").order_by(Message.id.desc()).get()
    assert copy_of_question.id != answer.id - 1
    copy = copy_of_question.pictures()[0]
    assert copy.id != picture.id and (copy.width, copy.height) == (64, 48)
    assert client.get(f"/files/{copy.file}").data == make_png(64, 48)


def test_an_import_with_a_broken_picture_imports_nothing(client, fake):
    answer = send(client, "这是什么？", [a_picture(client)])
    exported = client.get(f"/c/{answer.conversation_id}/export.json").get_json()
    exported["conversations"][0]["messages"][0]["pictures"][0]["data"] = "bm90IGEgcGljdHVyZQ=="
    exported["conversations"][0]["export_id"] = "f" * 32  # another conversation: not skipped as the same
    assert "不是 PNG、JPEG 或 WebP 图片" in imported(client, json.dumps(exported).encode()).text
    assert Message.select().count() == 2


def a_gallery_picture(app):
    from models import Image, ImageTask
    from services.painting.files import write_file
    task = ImageTask.create(model="wan2.2-t2i-flash", prompt="花店", status=ImageTask.SUCCEEDED)
    with app.app_context():
        write_file("2026/12/1-0-test.png", make_png(80, 60))
    return Image.create(task=task, file="2026/12/1-0-test.png", thumbnail="thumbs/x.webp", width=80, height=60,
                        prompt="花店", model=task.model, provider="dashscope")


def test_asking_about_a_gallery_picture_opens_a_new_conversation_with_it_attached(app, client):
    image = a_gallery_picture(app)
    assert "就这张图提问" in client.get(f"/gallery/{image.id}").get_data(as_text=True)
    page = client.get(f"/?picture={image.id}").get_data(as_text=True)
    picture = Attachment.get()
    assert f'name="attachment" value="{picture.id}"' in page
    assert "autofocus" in page
    assert client.get(f"/files/{picture.file}").data == make_png(80, 60)
    assert picture.file != image.file


def test_asking_about_a_missing_picture_is_not_found(client):
    assert client.get("/?picture=999").status_code == 404


# -- image editing ("改这张图") ----------------------------------------------------------

def edit(client, source, prompt="把天空改成晚霞", **fields):
    data = {**source, "prompt": prompt, "n": "1", "provider": "dashscope", "model": "wan2.5-i2i-preview",
            "prompt_extend": "on", **fields}
    return client.post("/images/edit", data=data, headers=HX)


def finished_task():
    return wait_for(last_task().id)


def test_editing_a_gallery_picture_on_dashscope_makes_a_new_picture_linked_both_ways(app, client, fake):
    image = a_gallery_picture(app)
    page = client.get(f"/images/edit?image={image.id}").get_data(as_text=True)
    assert 'value="wan2.5-i2i-preview"' in page
    response = edit(client, {"image": image.id})
    assert response.status_code == 200, response.text
    task = finished_task()
    assert task.status == "succeeded", task.error
    submit = next(r for r in fake.requests if r["path"].endswith("/image2image/image-synthesis"))
    assert submit["headers"]["X-DashScope-Async"] == "enable"
    assert submit["json"]["model"] == "wan2.5-i2i-preview"
    assert submit["json"]["input"]["prompt"] == "把天空改成晚霞"
    assert [u[:22] for u in submit["json"]["input"]["images"]] == ["data:image/png;base64,"]
    assert "size" not in submit["json"]["parameters"]
    made = task.images().get()
    assert (made.prompt, made.model, task.source_image_id) == ("把天空改成晚霞", "wan2.5-i2i-preview", image.id)
    detail = client.get(f"/gallery/{made.id}").get_data(as_text=True)
    assert "修改说明" in detail and "基于" in detail and f'href="/gallery/{image.id}"' in detail
    assert f'href="/images/edit?from={made.id}"' in detail  # 再画一次
    source = client.get(f"/gallery/{image.id}").get_data(as_text=True)
    assert "由此改出" in source and f'href="/gallery/{made.id}"' in source


def test_editing_on_openrouter_sends_the_picture_with_the_instruction(app, client, fake):
    image = a_gallery_picture(app)
    edit(client, {"image": image.id}, provider="openrouter", model="google/gemini-2.5-flash-image", n="2")
    task = finished_task()
    assert task.status == "succeeded", task.error
    assert task.images().count() == 2
    call = [r for r in fake.requests if r["path"].endswith("/chat/completions")][-1]["json"]
    assert call["modalities"] == ["image", "text"]
    content = call["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "把天空改成晚霞"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_a_picture_sent_in_the_chat_can_be_edited(app, client, fake):
    picture = a_picture(client)
    send(client, "这是什么？", [picture])
    page = client.get(f"/c/{Attachment.get().message.conversation_id}").get_data(as_text=True)
    assert f'href="/images/edit?attachment={picture.id}"' in page
    edit(client, {"attachment": picture.id})
    task = finished_task()
    assert (task.status, task.source_file, task.source_image_id) == ("succeeded", picture.file, None)
    assert "对话里的图片" in client.get(f"/gallery/{task.images().get().id}").get_data(as_text=True)


def test_paint_again_of_an_edit_fills_in_the_same_instruction_and_source(app, client, fake):
    image = a_gallery_picture(app)
    edit(client, {"image": image.id}, prompt="加一只猫")
    made = finished_task().images().get()
    page = client.get(f"/images/edit?from={made.id}").get_data(as_text=True)
    assert ">加一只猫</textarea>" in page
    assert f'name="from" value="{made.id}"' in page
    edit(client, {"from": made.id}, prompt="加两只猫")
    again = finished_task()
    assert (again.source_image_id, again.prompt) == (image.id, "加两只猫")


def test_an_edit_without_an_instruction_is_explained(app, client):
    response = edit(client, {"image": a_gallery_picture(app).id}, prompt="")
    assert response.status_code == 422
    assert "请写下想怎么改" in response.text


def test_a_text_to_image_model_is_refused_by_the_editing_endpoint(app, client, fake):
    edit(client, {"image": a_gallery_picture(app).id}, model="wan2.2-t2i-flash")
    task = finished_task()
    assert task.status == "failed"
    assert "请检查模型名称" in error_text(task.error)


def test_an_edit_under_way_is_finished_after_a_restart(app, client, fake):
    from app import create_app
    image = a_gallery_picture(app)
    app.extensions["painter"].stop()  # the first process ends with the edit unfinished
    edit(client, {"image": image.id}, prompt="慢慢改 [slow]")
    restarted = create_app({"TESTING": True})
    try:
        with restarted.app_context():
            task = finished_task()
        assert task.status == "succeeded"
        assert task.images().count() == 1
    finally:
        restarted.extensions["painter"].stop()


def test_the_markdown_export_says_a_message_had_pictures(client, fake):
    answer = send(client, "这是什么？", [a_picture(client), a_picture(client)])
    markdown = client.get(f"/c/{answer.conversation_id}/export.md").get_data(as_text=True)
    assert "（附图 2 张，图片本身在 JSON 导出里）" in markdown


def test_a_file_name_is_shown_as_text_never_as_markup(client):
    response = upload(client, ("<img src=x onerror=alert(1)>.png", b"not a picture"))
    assert "<img src=x" not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in response.text


def test_an_edit_whose_source_was_deleted_says_so(app, client, fake):
    image = a_gallery_picture(app)
    edit(client, {"image": image.id})
    made = finished_task().images().get()
    client.delete(f"/gallery/{image.id}", headers=HX)
    detail = client.get(f"/gallery/{made.id}").get_data(as_text=True)
    assert "图库里的图片（已删除）" in detail
    assert image.file not in detail
