"""Crashes, load and restarts against Moyan under gunicorn, as in production."""
import re
import sqlite3
import threading

import pytest

from helpers import LiveServer, app_env, wait_until
from fake_upstream import REPLY

pytestmark = pytest.mark.sqlite_only  # reads the SQLite file itself


def rows(server, sql, *params):
    with sqlite3.connect(server.env["MOYAN_DATA_DIR"] + "/moyan.db", timeout=10) as db:
        return db.execute(sql, params).fetchall()


def restarted(server, tmp_path, name):
    again = LiveServer(server.env, tmp_path / name)
    again.start()
    return again


def test_sigkill_in_the_middle_of_an_answer_keeps_it_marked_interrupted(fake, tmp_path):
    server = LiveServer(app_env(fake, tmp_path / "data"), tmp_path / "first.log")
    server.start()
    session = server.session()
    sent = session.post(server.url + "/send", data={"text": "你好", "provider": "dashscope", "model": "qwen-slow"})
    message_id = int(re.findall(r'id="msg-(\d+)"', sent.text)[-1])
    wait_until(lambda: rows(server, "SELECT content FROM message WHERE id = ?", message_id)[0][0])
    server.stop(kill=True)
    saved = rows(server, "SELECT status, content FROM message WHERE id = ?", message_id)[0]
    assert saved[0] == "streaming" and saved[1].startswith("收到")

    again = restarted(server, tmp_path, "second.log")
    try:
        html = session.get(f"{again.url}/m/{message_id}").text
        assert "回答被中断" in html and "重新生成" in html and "收到" in html
        status, content = rows(again, "SELECT status, content FROM message WHERE id = ?", message_id)[0]
        assert status == "interrupted" and content == saved[1]
        regenerated = session.post(f"{again.url}/m/{message_id}/regenerate").text
        new_id = int(re.findall(r'id="msg-(\d+)"', regenerated)[-1])
        session.get(f"{again.url}/m/{new_id}/stream", timeout=30).close()
        wait_until(lambda: rows(again, "SELECT status FROM message WHERE id = ?", new_id)[0][0] == "done")
    finally:
        again.stop()


def test_sigkill_in_the_middle_of_an_image_task_and_the_task_still_finishes(fake, tmp_path):
    server = LiveServer(app_env(fake, tmp_path / "data"), tmp_path / "first.log")
    server.start()
    session = server.session()
    session.post(server.url + "/images", data={"prompt": "崩溃前 [slow]", "size": "1024*1024", "n": "1",
                                               "provider": "dashscope", "model": "wan2.2-t2i-flash"})
    assert rows(server, "SELECT provider_task_id FROM imagetask")[0][0]
    server.stop(kill=True)
    again = restarted(server, tmp_path, "second.log")
    try:
        wait_until(lambda: rows(again, "SELECT status FROM imagetask")[0][0] == "succeeded")
        assert rows(again, "SELECT count(*) FROM image")[0][0] == 1
    finally:
        again.stop()


def test_fifty_chats_and_image_tasks_at_once_lose_nothing(live_server):
    errors = []

    def chat(number):
        try:
            session = live_server.session()
            sent = session.post(live_server.url + "/send", data={"text": f"第{number}个", "provider": "dashscope"})
            message_id = int(re.findall(r'id="msg-(\d+)"', sent.text)[-1])
            stream = session.get(f"{live_server.url}/m/{message_id}/stream", timeout=60).text
            assert "event: done" in stream
        except Exception as exc:  # collected and reported below
            errors.append(repr(exc))

    def paint(number):
        try:
            session = live_server.session()
            session.post(live_server.url + "/images", data={
                "prompt": f"第{number}张", "size": "1024*1024", "n": "1", "provider": "dashscope",
                "model": "wan2.2-t2i-flash"}).raise_for_status()
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(50)]
    threads += [threading.Thread(target=paint, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors
    answers = rows(live_server, "SELECT status, content FROM message WHERE role = 'assistant'")
    assert len(answers) == 50
    assert all(status == "done" for status, _ in answers)
    assert sorted(content for _, content in answers) == sorted(REPLY(f"第{i}个") for i in range(50))
    assert rows(live_server, "SELECT count(*) FROM conversation")[0][0] == 50
    wait_until(lambda: rows(live_server, "SELECT count(*) FROM imagetask WHERE status = 'succeeded'")[0][0] == 10,
               seconds=60)
    assert "database is locked" not in live_server.read_log()
