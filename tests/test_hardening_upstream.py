"""Hardening II: replies from the providers that make no sense, and files a person imports.

Every case ends in a clear state with a Chinese sentence; one task's trouble never stalls
another; a submit whose outcome is unknown is never repeated; nothing anyone sends holds
the worker. docs/RELIABILITY.md lists these tests; the last one keeps it in step.
"""
import os

import pytest

from models import Image, ImageTask
from test_images import paint, wait_for

HX = {"HX-Request": "true"}
OPENROUTER_IMAGE_MODEL = "google/gemini-2.5-flash-image"


def submits_of(fake, marker):
    return [r for r in fake.requests
            if r["path"].endswith("/image-synthesis") and marker in r["json"]["input"]["prompt"]]


def polls_of(fake, task):
    return [r for r in fake.requests if r["path"].endswith(f"/tasks/{task.task_id}")]


def last_task():
    return ImageTask.select().order_by(ImageTask.id.desc()).get()


# -- 3. replies the image API should never send --------------------------------------------


@pytest.mark.parametrize("marker", ["[submit-html]", "[submit-no-output]"])
def test_a_submit_answered_with_nonsense_fails_once_and_is_never_sent_again(client, fake, marker):
    response = paint(client, f"一间花店 {marker}")
    assert response.status_code == 200
    task = wait_for(last_task().id)
    assert task.status == ImageTask.FAILED
    assert "不知道任务是否已经创建" in task.error
    assert "不知道任务是否已经创建" in client.get(f"/images/tasks/{task.id}").text
    # The painter goes round many times while another task is painted: still one submit.
    assert wait_for(paint(client, "一只猫") and last_task().id).status == ImageTask.SUCCEEDED
    assert len(submits_of(fake, marker)) == 1


@pytest.mark.parametrize("marker", ["[poll-html]", "[poll-no-output]"])
def test_a_task_whose_polls_make_no_sense_backs_off_and_never_stalls_another(client, fake, marker):
    paint(client, f"一间花店 {marker}")
    stuck = last_task()
    paint(client, "一只猫")
    assert wait_for(last_task().id).status == ImageTask.SUCCEEDED
    stuck = ImageTask.get_by_id(stuck.id)
    assert stuck.is_running and stuck.polls >= 1  # each unreadable poll is counted and put off
    assert stuck.next_poll_at > stuck.submitted_at


@pytest.mark.parametrize("marker", ["[poll-html]", "[poll-no-output]"])
def test_a_task_whose_polls_never_make_sense_ends_with_a_sentence(app, client, fake, marker):
    app.config["IMAGE_TASK_TIMEOUT"] = 1
    paint(client, f"一间花店 {marker}")
    task = wait_for(last_task().id)
    assert task.status == ImageTask.FAILED
    assert "一直无法识别" in task.error
    assert len(polls_of(fake, task)) < 15  # put off a little more each time, not every second


@pytest.mark.parametrize("marker", ["[or-html]", "[or-no-choices]"])
def test_an_openrouter_painting_answered_with_nonsense_ends_with_a_sentence(client, fake, marker):
    paint(client, f"一只猫 {marker}", provider="openrouter", model=OPENROUTER_IMAGE_MODEL)
    task = wait_for(last_task().id)
    assert task.status == ImageTask.FAILED
    assert "无法识别" in task.error
    assert "重启" not in task.error


# -- 9. decompression bombs -----------------------------------------------------------------


@pytest.mark.parametrize("marker, provider, model", [
    ("[huge]", "dashscope", "wan2.2-t2i-flash"),
    ("[or-huge]", "openrouter", OPENROUTER_IMAGE_MODEL),
])
def test_a_picture_larger_than_the_provider_can_paint_is_refused_unopened(app, client, fake, marker,
                                                                          provider, model):
    paint(client, f"一只猫 {marker}", provider=provider, model=model)
    task = wait_for(last_task().id)
    assert task.status == ImageTask.FAILED
    assert "尺寸超过" in task.error
    assert Image.select().count() == 0
    folder = os.path.join(app.config["DATA_DIR"], "images")
    assert not any(files for _, _, files in os.walk(folder))
