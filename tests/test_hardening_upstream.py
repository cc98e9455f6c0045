"""Hardening II: replies from the providers that make no sense, and files a person imports.

Every case ends in a clear state with a Chinese sentence; one task's trouble never stalls
another; a submit whose outcome is unknown is never repeated; nothing anyone sends holds
the worker. docs/RELIABILITY.md lists these tests; the last one keeps it in step.
"""
import ast
import glob
import io
import json
import os
import re

import pytest

from helpers import HX, ROOT, imported, last_task, paint, wait_for, wait_until
from models import Conversation, Image, ImageTask, ImportJob, Message
from services.failures import error_text
OPENROUTER_IMAGE_MODEL = "google/gemini-2.5-flash-image"


def submits_of(fake, marker):
    return [r for r in fake.requests
            if r["path"].endswith("/image-synthesis") and marker in r["json"]["input"]["prompt"]]


def polls_of(fake, task):
    return [r for r in fake.requests if r["path"].endswith(f"/tasks/{task.provider_task_id}")]


# -- 3. replies the image API should never send --------------------------------------------


@pytest.mark.parametrize("marker", ["[submit-html]", "[submit-no-output]", "[submit-502]"])
def test_a_submit_answered_with_nonsense_fails_once_and_is_never_sent_again(client, fake, marker):
    response = paint(client, f"一间花店 {marker}")
    assert response.status_code == 200
    task = wait_for(last_task().id)
    assert task.status == ImageTask.FAILED
    assert "不知道任务是否已经创建" in error_text(task.error)
    assert "不知道任务是否已经创建" in client.get(f"/images/tasks/{task.id}").text
    # The painter goes round many times while another task is painted: still one submit.
    paint(client, "一只猫")
    assert wait_for(last_task().id).status == ImageTask.SUCCEEDED
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
    assert "一直无法识别" in error_text(task.error)
    assert len(polls_of(fake, task)) < 15  # put off a little more each time, not every second


def test_a_task_that_succeeds_without_any_picture_ends_failed_with_a_sentence(client, fake):
    paint(client, "一间花店 [no-results]")
    task = wait_for(last_task().id)
    assert task.status == ImageTask.FAILED
    assert "却没有给出任何图片" in error_text(task.error)


@pytest.mark.parametrize("marker", ["[or-html]", "[or-no-choices]"])
def test_an_openrouter_painting_answered_with_nonsense_ends_with_a_sentence(client, fake, marker):
    paint(client, f"一只猫 {marker}", provider="openrouter", model=OPENROUTER_IMAGE_MODEL)
    task = wait_for(last_task().id)
    assert task.status == ImageTask.FAILED
    assert "无法识别" in error_text(task.error)
    assert "重启" not in error_text(task.error)


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
    assert "尺寸超过" in error_text(task.error)
    assert Image.select().count() == 0
    folder = os.path.join(app.config["DATA_DIR"], "images")
    assert not any(files for _, _, files in os.walk(folder))


# -- 4, 8, 10. imports: in the background, checked, titles cut --------------------------------


def export_of(*conversations):
    return json.dumps({"format": "moyan.conversations", "version": 1, "conversations": list(conversations)},
                      ensure_ascii=False).encode()


def conversation(messages=None, **fields):
    return {"title": "导入的对话", "provider": "dashscope", "model": "qwen-plus", **fields,
            "messages": messages if messages is not None else [{"role": "user", "content": "你好"}]}


def test_a_big_import_answers_at_once_and_shows_its_progress_until_done(client):
    messages = [{"role": ("user", "assistant")[i % 2], "content": f"消息 {i}"} for i in range(20_000)]
    upload = {"file": (io.BytesIO(export_of(conversation(messages))), "big.json")}
    response = client.post("/import", data=upload, headers=HX, content_type="multipart/form-data")
    assert response.status_code == 200
    assert 'hx-trigger="load delay:1s"' in response.text  # polls the job while it runs
    job_id = re.search(r'id="import-job-(\d+)"', response.text).group(1)
    wait_until(lambda: not ImportJob.get_by_id(job_id).is_unfinished, seconds=120)
    done = client.get(f"/import/{job_id}", headers=HX).text
    assert "hx-trigger" not in done and "已导入 1 段对话" in done  # the polling stops
    assert Message.select().count() == 20_000


def test_a_big_import_under_gunicorn_and_gevent_finishes_while_pages_keep_answering(live_server):
    session = live_server.session()
    messages = [{"role": ("user", "assistant")[i % 2], "content": f"消息 {i}"} for i in range(50_000)]
    files = {"file": ("big.json", export_of(conversation(messages)), "application/json")}
    started = session.post(live_server.url + "/import", files=files)
    assert 'hx-trigger="load delay:1s"' in started.text
    job_url = live_server.url + "/import/" + re.search(r'id="import-job-(\d+)"', started.text).group(1)
    assert session.get(live_server.url + "/conversations").status_code == 200
    wait_until(lambda: "hx-trigger" not in session.get(job_url).text, seconds=120)
    assert "已导入 1 段对话" in session.get(job_url).text


def test_an_upload_over_50_mb_is_refused_with_a_sentence_before_it_is_read(client):
    upload = {"file": (io.BytesIO(b" " * (51 * 1024 * 1024)), "big.json")}
    response = client.post("/import", data=upload, headers=HX, content_type="multipart/form-data")
    assert response.status_code == 413
    assert "文件太大（超过 50 MB）" in response.text and response.headers["HX-Retarget"] == "#alerts"
    assert ImportJob.select().count() == 0


def test_an_import_that_breaks_while_writing_leaves_nothing_behind(client, monkeypatch):
    insert, calls = Message.insert.__func__, []

    def failing_in_the_third_batch(cls, *args, **fields):
        calls.append(1)
        if len(calls) == 250:
            raise OSError("disk full")
        return insert(cls, *args, **fields)

    monkeypatch.setattr(Message, "insert", classmethod(failing_in_the_third_batch))
    messages = [{"role": "user", "content": f"消息 {i}"} for i in range(1_000)]
    response = imported(client, export_of(conversation(), conversation(messages)))
    assert "导入途中出了问题，没有导入任何内容" in response.text
    assert Conversation.select().count() == 0 and Message.select().count() == 0


@pytest.mark.parametrize("change, sentence", [
    ({"provider": "evil"}, "provider"),
    ({"model": "<script>" * 40}, "model"),
    ({"messages": [{"role": "user", "content": "你好", "prompt_tokens": 1e30}]}, "prompt_tokens"),
    ({"messages": [{"role": "user", "content": "你好", "total_tokens": -1}]}, "total_tokens"),
    ({"messages": [{"role": "user", "content": "你好", "provider": "evil"}]}, "provider"),
    ({"title": "标题\u0000"}, "空字符"),
])
def test_an_import_with_a_bad_field_is_refused_and_imports_nothing(client, change, sentence):
    response = imported(client, export_of(conversation(), conversation(**change)))
    assert sentence in response.text
    assert Conversation.select().count() == 0 and Message.select().count() == 0


def test_arrays_nested_100000_deep_are_refused_and_import_nothing(client):
    deep = "[" * 100_000 + "]" * 100_000
    content = export_of(conversation()).replace('"content": "你好"'.encode(), f'"content": {deep}'.encode())
    response = imported(client, content)
    assert "没有导入任何内容" in response.text
    assert Conversation.select().count() == 0


def test_titles_are_imported_on_one_line_and_cut_to_100_characters(client):
    response = imported(client, export_of(conversation(title="第一行\r\n第二行\t完"),
                                          conversation(title="长" * 1_000_000)))
    assert "已导入 2 段对话" in response.text
    titles = [c.title for c in Conversation.select().order_by(Conversation.id)]
    assert titles == ["第一行 第二行 完", "长" * 100]


def test_export_works_for_any_title_and_time_already_saved(client):
    imported(client, export_of(conversation(created_at="2025-01-01T08:00:00+08:00", messages=[
        {"role": "user", "content": "你好", "created_at": "2025-01-01T08:00:00+08:00"}])))
    first = Conversation.get()
    second = Conversation.create(title="坏\r\n标题/../\t")  # saved by an older version
    Message.create(conversation=second, role="user", content="你好")
    for c in (first, second):
        for kind in ("md", "json"):
            response = client.get(f"/c/{c.id}/export.{kind}")
            assert response.status_code == 200
            assert "\n" not in response.headers["Content-Disposition"]
    assert "2025-01-01" in client.get(f"/c/{first.id}/export.md").get_data(as_text=True)


@pytest.mark.parametrize("kind", ["md", "json"])
def test_an_export_of_an_id_too_big_for_the_database_is_not_found(client, kind):
    assert client.get(f"/c/9223372036854775808/export.{kind}").status_code == 404


# -- docs/RELIABILITY.md keeps up -------------------------------------------------------------


def test_the_reliability_document_lists_every_hardening_test():
    with open(os.path.join(ROOT, "docs", "RELIABILITY.md"), encoding="utf-8") as f:
        document = f.read()
    heading = "## 攻击与异常回复（加固 II）"
    assert heading in document
    section = document.split(heading, 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_\w+\.py)::(\w+)`", section))
    defined = {os.path.basename(path): defined_tests(path)
               for path in glob.glob(os.path.join(ROOT, "tests", "test_*.py"))}
    assert not [f"{file}::{name}" for file, name in named if name not in defined.get(file, ())]
    unlisted = [f"{file}::{name}" for file, names in defined.items() if file.startswith("test_hardening_")
                for name in names if (file, name) not in named]
    assert not unlisted, f"add a row to {heading} for: {unlisted}"


def defined_tests(path):
    with open(path, encoding="utf-8") as f:
        module = ast.parse(f.read())
    return {node.name for node in module.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
