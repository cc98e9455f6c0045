"""Two Moyan processes on two ports over one PostgreSQL database and one Redis, as in
docs/DEPLOY.md: whatever one process starts, the other can show, stop or finish."""
import re
import threading

import psycopg
import pytest

from helpers import LiveServer, app_env, postgres_database, wait_until
from fake_upstream import REPLY, SLOW_TAIL
from servers import Redis

pytestmark = pytest.mark.scaleout


@pytest.fixture
def servers(scaleout_env, tmp_path):
    env = {**scaleout_env, "MOYAN_IMAGE_LEASE": "2"}
    started = []
    try:
        for number in (1, 2):
            started.append(LiveServer(env, tmp_path / f"server{number}.log"))
            started[-1].start()
        yield started
    finally:
        for server in started:
            server.stop()


def rows(server, sql, *params):
    with psycopg.connect(server.env["DATABASE_URL"], autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def events(response):
    """(event, data) pairs of an SSE response, as they arrive."""
    event, data = None, []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
        elif not line and event:
            yield event, "\n".join(data)
            event, data = None, []


def send(server, session, text, model="qwen-slow"):
    sent = session.post(server.url + "/send", data={"text": text, "provider": "dashscope", "model": model})
    return int(re.findall(r'id="msg-(\d+)"', sent.text)[-1])


def test_an_answer_sent_through_one_process_streams_through_the_other(servers):
    first, second = servers
    session = first.session()  # the same cookie works on both: one secret key in the database
    message_id = send(first, session, "你好")
    # well into the answer (its text is saved every second): the other process must give the text so far
    wait_until(lambda: rows(first, "SELECT content FROM message WHERE id = %s", message_id)[0][0])
    seen = []
    with session.get(f"{second.url}/m/{message_id}/stream", stream=True, timeout=30) as stream:
        for event, data in events(stream):
            seen.append(event)
            if event == "done":
                final = data
    assert seen[0] == "snapshot" and seen.count("content") > 3 and seen[-1] == "done"
    assert "完毕" in final and SLOW_TAIL[:10] in final
    assert rows(first, "SELECT status, content FROM message WHERE id = %s", message_id) == [
        ("done", REPLY("你好") + SLOW_TAIL)]


def test_many_answers_at_once_each_reach_their_own_listener_on_the_other_process(servers):
    first, second = servers
    session = first.session()
    questions = [f"第{number}问" for number in range(12)]
    ids = [send(first, session, question, model="") for question in questions]
    finals = {}

    def listen(message_id):
        with second.session().get(f"{second.url}/m/{message_id}/stream", stream=True, timeout=30) as stream:
            finals[message_id] = [data for event, data in events(stream) if event == "done"]

    threads = [threading.Thread(target=listen, args=(message_id,)) for message_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for question, message_id in zip(questions, ids):
        assert f"收到：{question}" in finals[message_id][0]
    texts = [content for (content,) in rows(first, "SELECT content FROM message WHERE role = 'assistant' ORDER BY id")]
    assert texts == [REPLY(question) for question in questions]


def test_an_answer_is_stopped_through_the_other_process_and_keeps_its_text(servers):
    first, second = servers
    session = first.session()
    message_id = send(first, session, "请停下")
    with session.get(f"{second.url}/m/{message_id}/stream", stream=True, timeout=30) as stream:
        pieces = events(stream)
        for event, _ in pieces:
            if event == "content":
                break
        stopped = session.post(f"{second.url}/m/{message_id}/stop")
        assert "已停止生成" in stopped.text
        assert [event for event, _ in pieces][-1] == "done"
    status, content = rows(first, "SELECT status, content FROM message WHERE id = %s", message_id)[0]
    assert status == "stopped" and content.startswith("收到") and content != REPLY("请停下") + SLOW_TAIL
    assert content[:6] in stopped.text


def test_an_answer_whose_process_dies_ends_as_interrupted_on_the_other(servers):
    first, second = servers
    session = first.session()
    message_id = send(first, session, "中途崩溃")
    wait_until(lambda: rows(first, "SELECT content FROM message WHERE id = %s", message_id)[0][0])
    with session.get(f"{second.url}/m/{message_id}/stream", stream=True, timeout=30) as stream:
        pieces = events(stream)
        for event, _ in pieces:
            if event == "content":
                break
        first.stop(kill=True)
        final = [data for event, data in pieces if event == "done"]
    assert "回答被中断" in final[0] and "收到" in final[0]
    [(status,)] = rows(second, "SELECT status FROM message WHERE id = %s", message_id)
    assert status == "interrupted"


def test_an_image_task_survives_the_sigkill_of_the_process_following_it(servers):
    first, second = servers
    session = first.session()
    session.post(first.url + "/images", data={"prompt": "两个进程 [slow]", "size": "1024*1024", "n": "1",
                                              "provider": "dashscope", "model": "wan2.2-t2i-flash"})
    wait_until(lambda: rows(first, "SELECT lease_owner FROM imagetask WHERE provider_task_id != ''")[0][0])
    owner_pid = int(rows(first, "SELECT lease_owner FROM imagetask")[0][0].split(":")[1])
    follower = next(server for server in servers if server.process.pid == parent_of(owner_pid))
    survivor = second if follower is first else first
    follower.stop(kill=True)

    wait_until(lambda: rows(survivor, "SELECT status FROM imagetask")[0][0] == "succeeded")
    [(owner,)] = rows(survivor, "SELECT lease_owner FROM imagetask")
    assert int(owner.split(":")[1]) != owner_pid
    [(file,)] = rows(survivor, "SELECT file FROM image")
    assert survivor.session().get(f"{survivor.url}/files/{file}").status_code == 200


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_an_answer_is_still_saved_whole_when_redis_goes_away_in_the_middle(fake, tmp_path, request):
    with Redis() as redis_server:
        server = LiveServer({**app_env(fake, tmp_path / "data", postgres_database(request)),
                             "REDIS_URL": redis_server.url()}, tmp_path / "server.log")
        server.start()
        try:
            message_id = send(server, server.session(), "Redis 停了")
            wait_until(lambda: rows(server, "SELECT content FROM message WHERE id = %s", message_id)[0][0])
            redis_server.stop()
            wait_until(lambda: rows(server, "SELECT status FROM message WHERE id = %s", message_id)[0][0] != "streaming")
            assert rows(server, "SELECT status, content FROM message WHERE id = %s", message_id) == [
                ("done", REPLY("Redis 停了") + SLOW_TAIL)]
        finally:
            server.stop()
