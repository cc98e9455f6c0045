"""Painting with Wan and OpenRouter: tasks followed on the server, pictures kept on disk."""
import datetime
import os

import pytest

from app import create_app
from helpers import HX, paint, painted, wait_for
from models import Image, ImageTask, now
from services.failures import error_text


def data_path(app, relative):
    return os.path.join(app.config["DATA_DIR"], "images", relative)


def test_a_task_goes_from_submit_to_a_stored_image_and_thumbnail(app, client, fake):
    task = painted(client, "一间花店", negative_prompt="文字", seed="42", n="2")
    assert task.status == ImageTask.SUCCEEDED
    submit = next(r for r in fake.requests if r["path"].endswith("/image-synthesis"))
    assert submit["headers"]["X-DashScope-Async"] == "enable"
    assert submit["json"]["parameters"] == {"size": "1024*1024", "n": 2, "seed": 42,
                                            "prompt_extend": True, "watermark": False}
    assert submit["json"]["input"] == {"prompt": "一间花店", "negative_prompt": "文字"}
    downloads = [r for r in fake.requests if r["path"].startswith("/oss/")]
    assert len(downloads) == 2 and not any("Authorization" in r["headers"] for r in downloads)
    images = list(task.images())
    assert [i.seed for i in images] == [42, 43]
    image = images[0]
    assert (image.prompt, image.negative_prompt, image.model, image.provider) == (
        "一间花店", "文字", "wan2.2-t2i-flash", "dashscope")
    assert image.rewritten_prompt.startswith("一间花店，")
    assert image.provider_task_id == task.provider_task_id and image.request_id
    assert image.width > 0 and image.height > 0
    assert os.path.getsize(data_path(app, image.file)) > 0
    with open(data_path(app, image.thumbnail), "rb") as f:
        assert f.read(12)[8:12] == b"WEBP"


def test_an_empty_seed_is_chosen_by_moyan_so_it_can_be_reused(client, fake):
    task = painted(client, "一只猫")
    sent = next(r for r in fake.requests if r["path"].endswith("/image-synthesis"))["json"]
    assert sent["parameters"]["seed"] == task.seed
    assert task.images().get().seed == task.seed


def test_the_card_polls_while_running_and_stops_polling_when_done(client, fake):
    card = paint(client, "慢慢画 [slow]").text
    assert 'hx-trigger="load delay:2s"' in card
    assert "排队中" in card or "生成中" in card
    task = wait_for(ImageTask.get().id)
    finished = client.get(f"/images/tasks/{task.id}").text
    assert "hx-trigger" not in finished
    assert "<img" in finished


def test_a_task_is_saved_with_its_id_before_the_card_is_shown(client, fake):
    paint(client, "慢慢画 [slow]")
    task = ImageTask.get()
    assert task.provider_task_id and task.status in (ImageTask.PENDING, ImageTask.RUNNING)
    wait_for(task.id)


def test_a_restart_in_the_middle_of_a_task_still_finishes_it(app, client, fake):
    app.extensions["painter"].stop()  # the first process ends with the task unfinished
    paint(client, "重启前提交 [slow]")  # the request itself submits it
    task = ImageTask.get()
    assert task.is_running
    restarted = create_app({"TESTING": True})
    try:
        with restarted.app_context():
            finished = wait_for(task.id)
        assert finished.status == ImageTask.SUCCEEDED
        assert finished.images().count() == 1
    finally:
        restarted.extensions["painter"].stop()


@pytest.mark.parametrize("prompt, status, sentence", [
    ("画 [fail]", ImageTask.FAILED, "InvalidParameter"),
    ("画 [cancel]", ImageTask.CANCELED, "取消"),
    ("画 [unknown]", ImageTask.EXPIRED, "24 小时"),
    ("画 [expired]", ImageTask.FAILED, "图片链接已过期"),
    ("画 [not-image]", ImageTask.FAILED, "不是图片"),
    ("画 [moderation]", ImageTask.FAILED, "安全审核"),
    ("画 [ip]", ImageTask.FAILED, "知识产权"),
    ("画 [arrears]", ImageTask.FAILED, "欠费"),
    ("画 [quota]", ImageTask.FAILED, "额度已用完"),
    ("画 [throttle]", ImageTask.FAILED, "请求太频繁"),
])
def test_each_failure_ends_in_a_chinese_sentence(client, fake, prompt, status, sentence):
    task = painted(client, prompt)
    assert task.status == status
    assert sentence in error_text(task.error)
    assert sentence in client.get(f"/images/tasks/{task.id}").text


def test_a_wrong_key_is_explained(client, fake):
    client.post("/settings/dashscope", data={"region": "custom", "base_url": fake.dashscope_base,
                                             "api_key": "sk-wrong-0000-1111"}, headers=HX)
    task = painted(client, "一间花店")
    assert "API Key 无效" in error_text(task.error)


def test_partial_success_keeps_the_images_that_came_and_says_what_did_not(client, fake):
    task = painted(client, "画 [partial]", n="3")
    assert task.status == ImageTask.PARTIAL
    assert task.images().count() == 2
    assert "生成了 2 张，另有 1 张失败" in error_text(task.error)


def test_a_throttled_submit_is_retried(client, fake):
    task = painted(client, "画 [throttle-once]")
    assert task.status == ImageTask.SUCCEEDED


def test_a_failed_download_is_retried(client, fake):
    task = painted(client, "画 [flaky-download]")
    assert task.status == ImageTask.SUCCEEDED
    assert task.images().count() == 1


def test_more_than_two_tasks_wait_in_a_local_queue(client, fake):
    cards = [paint(client, f"第 {i} 张 [slow]").text for i in range(3)]
    assert "排队等待" in cards[2]
    assert "排队等待" not in cards[0]
    statuses = [t.status for t in ImageTask.select().order_by(ImageTask.id)]
    assert statuses[2] == ImageTask.WAITING
    for task in list(ImageTask.select()):  # an open cursor would pin an old snapshot
        assert wait_for(task.id, seconds=30).status == ImageTask.SUCCEEDED
    assert fake.max_in_flight <= 2


def test_openrouter_image_models_paint_from_the_same_form(app, client, fake):
    task = painted(client, "一只猫", provider="openrouter", model="google/gemini-2.5-flash-image",
                   size="1280*720")
    assert task.status == ImageTask.SUCCEEDED, task.error
    sent = fake.requests[-1]["json"]
    assert sent["modalities"] == ["image", "text"]
    assert sent["image_config"] == {"aspect_ratio": "16:9"}
    image = task.images().get()
    assert image.provider == "openrouter"
    assert os.path.exists(data_path(app, image.file))


def test_an_openrouter_answer_without_an_image_is_explained(client, fake):
    task = painted(client, "[no-image]", provider="openrouter", model="google/gemini-2.5-flash-image")
    assert task.status == ImageTask.FAILED
    assert "没有返回图片" in error_text(task.error)


@pytest.mark.parametrize("fields, sentence", [
    ({"prompt": ""}, "请写下想画的内容"),
    ({"prompt": "x" * 801}, "最多 800 字"),
    ({"negative_prompt": "x" * 501}, "最多 500 字"),
    ({"size": "custom", "width": "511", "height": "1024"}, "512–1440"),
    ({"size": "custom", "width": "1024", "height": "abc"}, "512–1440"),
    ({"size": "1024x1024"}, "512–1440"),
    ({"n": "5"}, "1–4"),
    ({"n": "0"}, "1–4"),
    ({"seed": "-1"}, "随机种子"),
    ({"seed": "2147483648"}, "随机种子"),
    ({"provider": "evil"}, "模型服务"),
    ({"model": ""}, "模型名称"),
])
def test_bad_values_are_explained_and_nothing_is_submitted(client, fake, fields, sentence):
    response = paint(client, fields.pop("prompt", "一间花店"), **fields)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#paint-form"
    assert sentence in response.text
    assert ImageTask.select().count() == 0
    assert not fake.requests


def make_images(count, model="wan2.2-t2i-flash", prompt="花店"):
    task = ImageTask.create(model=model, prompt=prompt, status=ImageTask.SUCCEEDED)
    return [Image.create(task=task, index=i, file=f"x/{i}.png", thumbnail=f"thumbs/x/{i}.webp",
                         width=1024, height=1024, prompt=f"{prompt} {i}", model=model,
                         provider="dashscope") for i in range(count)]


def test_the_gallery_pages_newest_first_and_loads_more_when_scrolled_to(client):
    images = make_images(45)
    first = client.get("/gallery").text
    assert first.count('class="gallery-item') == 40
    assert first.index(f"/gallery/{images[-1].id}\"") < first.index(f"/gallery/{images[-2].id}\"")
    assert 'hx-trigger="intersect once"' in first
    more = client.get(f"/gallery?before={images[5].id}", headers=HX).text
    assert more.count('class="gallery-item') == 5
    assert 'hx-trigger="intersect once"' not in more


def test_the_gallery_filters_by_prompt_text_and_model(client):
    make_images(2, prompt="花店")
    make_images(3, model="wan2.2-t2i-plus", prompt="猫")
    assert client.get("/gallery?q=猫", headers=HX).text.count('class="gallery-item') == 3
    html = client.get("/gallery?model=wan2.2-t2i-flash", headers=HX).text
    assert html.count('class="gallery-item') == 2
    assert "没有找到匹配的图片" in client.get("/gallery?q=狗", headers=HX).text


def test_the_detail_view_shows_everything_and_paint_again_fills_the_form(client, fake):
    task = painted(client, "一间花店", negative_prompt="文字", seed="7", size="1280*720")
    image = task.images().get()
    html = client.get(f"/gallery/{image.id}").text
    for text in ("一间花店", image.rewritten_prompt, "文字", "随机种子", "7", "wan2.2-t2i-flash", "下载原图"):
        assert text in html
    form = client.get(f"/images?from={image.id}").text
    assert ">一间花店</textarea>" in form
    assert 'value="7"' in form
    assert 'value="1280*720" selected' in form


def test_deleting_an_image_removes_its_files(app, client, fake):
    image = painted(client, "一间花店").images().get()
    paths = [data_path(app, image.file), data_path(app, image.thumbnail)]
    response = client.delete(f"/gallery/{image.id}", headers=HX)
    assert response.headers["HX-Redirect"] == "/gallery"
    assert Image.select().count() == 0
    assert not any(os.path.exists(p) for p in paths)


def test_images_are_served_with_their_type_and_long_caching(client, fake):
    image = painted(client, "一间花店").images().get()
    response = client.get(f"/files/{image.file}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert "immutable" in response.headers["Cache-Control"]
    assert client.get(f"/files/{image.thumbnail}").headers["Content-Type"] == "image/webp"


@pytest.mark.parametrize("path", ["../moyan.db", "..%2Fmoyan.db", "/etc/passwd", "x/../../moyan.db"])
def test_files_outside_the_image_folder_are_refused(client, path):
    assert client.get(f"/files/{path}", follow_redirects=True).status_code == 404


@pytest.mark.parametrize("url", ["/gallery/{id}", "/images/tasks/{id}"])
def test_an_id_too_big_for_the_database_is_not_found(client, url):
    assert client.get(url.format(id=2**63)).status_code == 404


def test_paint_again_from_a_picture_that_cannot_exist_shows_an_empty_form(client):
    response = client.get(f"/images?from={2**63}")
    assert response.status_code == 200
    assert "></textarea>" in response.text


def test_deleting_a_picture_that_cannot_exist_is_not_found(client):
    assert client.delete(f"/gallery/{2**63}", headers=HX).status_code == 404


@pytest.mark.parametrize("before", [str(2**63), "-1", "abc"])
def test_the_gallery_ignores_a_position_that_cannot_exist(client, before):
    make_images(2)
    assert client.get(f"/gallery?before={before}", headers=HX).text.count('class="gallery-item') == 2


def test_openrouter_image_models_are_offered_after_testing_the_connection(client, fake):
    client.post("/settings/openrouter/test", headers=HX)
    form = client.get("/images").text
    assert '<option value="google/gemini-2.5-flash-image">' in form
    assert '<option value="openai/gpt-4o">' not in form
    assert any(r["query"] == "output_modalities=image" for r in fake.requests)


def test_a_task_leased_by_another_process_is_left_to_it_until_the_lease_runs_out(app):
    from services.painting.scheduler import claim
    app.extensions["painter"].stop()  # at its start it frees every lease (one process): not here
    later = now() + datetime.timedelta(hours=1)
    task = ImageTask.create(model="wan2.2-t2i-flash", prompt="花店", status=ImageTask.PENDING, next_poll_at=later)
    with app.app_context():
        assert claim(task, "host-a:1:aaaaaa")
        assert claim(ImageTask.get_by_id(task.id), "host-a:1:aaaaaa")  # renewed by its holder
        assert not claim(ImageTask.get_by_id(task.id), "host-b:2:bbbbbb")
        ImageTask.update(lease_until=now() - datetime.timedelta(seconds=1)).where(ImageTask.id == task.id).execute()
        assert claim(ImageTask.get_by_id(task.id), "host-b:2:bbbbbb")
        assert ImageTask.get_by_id(task.id).lease_owner == "host-b:2:bbbbbb"


def test_an_openrouter_painting_is_given_up_only_once_its_process_lease_has_run_out(app):
    from services.painting.scheduler import interrupt_openrouter_tasks
    app.extensions["painter"].stop()  # at its start it frees every lease (one process): not here
    fields = {"provider": "openrouter", "model": "google/gemini-2.5-flash-image", "status": ImageTask.RUNNING}
    alive = ImageTask.create(prompt="还在画", lease_owner="host-b:2:bbbbbb",
                             lease_until=now() + datetime.timedelta(minutes=1), **fields)
    dead = ImageTask.create(prompt="进程没了", lease_owner="host-c:3:cccccc",
                            lease_until=now() - datetime.timedelta(seconds=1), **fields)
    with app.app_context():
        interrupt_openrouter_tasks()
    assert ImageTask.get_by_id(alive.id).status == ImageTask.RUNNING
    assert ImageTask.get_by_id(dead.id).status == ImageTask.FAILED
    assert "重启" in error_text(ImageTask.get_by_id(dead.id).error)
