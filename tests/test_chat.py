"""Chat through the app's HTTP endpoints, against the fake upstream. Every upstream fault,
per provider, is in test_fault_matrix.py; here are only the ones it does not cover."""
import re

import pytest
from markupsafe import escape

from db import create_search_index, database
from fake_upstream import REPLY, is_title_call
from helpers import (DASHSCOPE_KEY, HX, ON_POSTGRES, OPENROUTER_KEY, answer_calls, answer_id, ask, read_stream,
                     send, wait_for, wait_until, wait_until_streaming)
from models import Conversation, Image, ImageTask, Message
from services.failures import error_text


def last_stream_call(fake):
    """The newest streamed request for an answer (a first answer is followed by a title call)."""
    return answer_calls(fake)[-1]


def events(stream_text):
    return re.findall(r"^event: (\w+)$", stream_text, flags=re.M)


def test_sending_shows_the_question_and_an_answer_that_streams(client, fake):
    response = send(client, "你好")
    assert "你好" in response.text
    assert 'sse-connect="/m/' in response.text
    assert 'sse-close="done"' in response.text
    stream = read_stream(client, answer_id(response))
    names = events(stream)
    assert names[0] == "snapshot"
    assert names[-1] == "done"
    assert "content" in names


def test_the_stream_is_never_compressed(client, fake):
    """Each event goes out as it comes: a compressor would hold them back."""
    response = client.get(f"/m/{answer_id(send(client, '你好'))}/stream",
                          headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert "Content-Encoding" not in response.headers
    assert events(response.get_data(as_text=True))[-1] == "done"


def test_the_finished_answer_is_saved_with_its_usage_and_rendered_as_markdown(client, fake):
    message = ask(client, "你好")
    assert message.status == Message.DONE
    assert message.content == REPLY("你好")
    assert message.total_tokens and message.completion_tokens
    page = client.get(f"/c/{message.conversation_id}").text
    assert '<pre class="highlight" data-lang="python">' in page
    assert f"{message.total_tokens} tokens" in page


def test_dashscope_gets_usage_and_an_explicit_thinking_switch(client, fake):
    ask(client, "你好")
    body = last_stream_call(fake)["json"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["enable_thinking"] is False
    assert body["model"] == "qwen-plus"
    assert last_stream_call(fake)["headers"]["Authorization"] == f"Bearer {DASHSCOPE_KEY}"


def test_the_conversation_history_and_system_prompt_are_sent(client, fake):
    first = ask(client, "第一句", system_prompt="你是一位老师。")
    ask(client, "第二句", conversation_id=first.conversation_id, system_prompt="你是一位老师。")
    messages = last_stream_call(fake)["json"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "你是一位老师。"
    assert messages[2]["content"] == REPLY("第一句")


def test_reasoning_is_streamed_apart_and_saved(client, fake):
    message = ask(client, "你好", model="qwen3-32b", thinking="on")
    assert last_stream_call(fake)["json"]["enable_thinking"] is True
    assert message.reasoning == "让我想一想：用户在打招呼。"
    assert message.content == REPLY("你好")
    assert "思考过程" in client.get(f"/m/{message.id}").text


def test_openrouter_streams_with_keepalive_comments_and_usage(client, fake):
    message = ask(client, "你好", provider="openrouter", model="openai/gpt-4o")
    assert message.status == Message.DONE
    assert message.content == REPLY("你好")
    assert message.total_tokens
    assert last_stream_call(fake)["headers"]["Authorization"] == f"Bearer {OPENROUTER_KEY}"


def test_openrouter_reasoning_is_kept(client, fake):
    message = ask(client, "你好", provider="openrouter", model="deepseek/deepseek-r1")
    assert message.reasoning == "让我想一想：用户在打招呼。"


@pytest.mark.parametrize("model", ["fault-crlf", "fault-split", "fault-no-done", "fault-rate-limit-once"])
def test_unusual_but_valid_streams_give_the_whole_answer(client, fake, model):
    message = ask(client, "你好", model=model)
    assert message.status == Message.DONE, message.error
    assert message.content == REPLY("你好")


@pytest.mark.parametrize("model, sentence", [("or-fault/timeout", "超时"), ("no-such/model", "厂商/模型")])
def test_a_refused_request_ends_in_a_chinese_sentence(client, fake, model, sentence):
    message = ask(client, "你好", provider="openrouter", model=model)
    assert message.status == Message.ERROR
    assert sentence in error_text(message.error)
    html = client.get(f"/m/{message.id}").text
    assert sentence in html
    assert "Traceback" not in html


def test_an_answer_cut_short_keeps_its_partial_text(client, fake):
    message = ask(client, "你好", provider="openrouter", model="or-fault/content-filter")
    assert message.status == Message.ERROR
    assert "安全审核中断" in error_text(message.error)
    assert message.content and REPLY("你好").startswith(message.content)
    follow_up = ask(client, "还在吗", conversation_id=message.conversation_id, provider="openrouter",
                    model="openai/gpt-4o")
    assert follow_up.status == Message.DONE


def test_a_wrong_key_says_so_and_never_shows_the_key(client, fake):
    client.post("/settings/dashscope", data={"region": "custom", "base_url": fake.dashscope_base,
                                             "api_key": "sk-wrong-key-0000-9999"}, headers=HX)
    message = ask(client, "你好")
    assert "API Key 无效" in error_text(message.error)
    assert "sk-wrong" not in client.get(f"/c/{message.conversation_id}").text


def test_reattaching_to_a_finished_answer_never_starts_a_new_generation(client, fake):
    message = ask(client, "你好")
    calls = len(fake.requests)
    stream = read_stream(client, message.id)
    assert events(stream) == ["done"]
    assert len(fake.requests) == calls


def test_a_second_listener_gets_the_text_so_far_then_the_rest(client, fake):
    response = send(client, "你好", model="qwen-slow")
    message_id = answer_id(response)
    wait_until_streaming(client, message_id)
    stream = read_stream(client, message_id)
    snapshot = stream.split("event: snapshot\n", 1)[1].split("\n\n", 1)[0]
    assert "收到" in snapshot
    assert Message.get_by_id(message_id).status == Message.DONE
    assert len(answer_calls(fake)) == 1


def test_the_answer_is_saved_while_it_grows(client, fake):
    response = send(client, "你好", model="qwen-slow")
    message_id = answer_id(response)
    partial = wait_until(lambda: Message.get_or_none((Message.id == message_id) & (Message.content != "")))
    assert partial.status == Message.STREAMING
    assert partial.content and REPLY("你好").startswith(partial.content[:10])
    client.post(f"/m/{message_id}/stop", headers=HX)


def test_one_save_writes_the_text_so_far_of_every_running_answer(app, client, fake):
    ids = [answer_id(send(client, text, model="qwen-slow")) for text in ("你好", "早上好")]
    for message_id in ids:
        wait_until_streaming(client, message_id)
    app.extensions["generations"].save_running()
    for message_id in ids:
        saved = Message.get_by_id(message_id)
        assert saved.status == Message.STREAMING and saved.content.startswith("收到")
        client.post(f"/m/{message_id}/stop", headers=HX)


def test_stop_keeps_what_came_so_far(client, fake):
    response = send(client, "你好", model="qwen-slow")
    message_id = answer_id(response)
    wait_until_streaming(client, message_id)
    html = client.post(f"/m/{message_id}/stop", headers=HX).text
    message = Message.get_by_id(message_id)
    assert message.status == Message.STOPPED
    assert message.content.startswith("收到")
    assert len(message.content) < len(REPLY("你好"))
    assert "已停止生成" in html
    assert "sse-connect" not in html


def test_regenerate_answers_again_as_a_new_version(client, fake):
    first = ask(client, "你好")
    html = client.post(f"/m/{first.id}/regenerate", headers=HX).text
    assert Message.get_by_id(first.id).is_current is False  # kept, as the other version
    answers = list(Conversation.get_by_id(first.conversation_id).messages().where(Message.role == "assistant"))
    assert len(answers) == 1 and answers[0].id != first.id
    assert f'sse-connect="/m/{answers[0].id}/stream"' in html
    read_stream(client, answers[0].id)
    assert Message.get_by_id(answers[0].id).content == REPLY("你好")


def test_editing_a_question_answers_it_again_on_a_new_branch(client, fake):
    first = ask(client, "第一句")
    second = ask(client, "第二句", conversation_id=first.conversation_id)
    question = Message.get(Message.content == "第一句")
    client.post(f"/m/{question.id}/edit", data={"text": "改过的第一句"}, headers=HX)
    remaining = list(Conversation.get_by_id(first.conversation_id).messages())
    assert [m.role for m in remaining] == ["user", "assistant"]
    assert remaining[0].content == "改过的第一句"
    read_stream(client, remaining[1].id)
    assert Message.get_by_id(remaining[1].id).content == REPLY("改过的第一句")
    assert Message.get_by_id(second.id).is_current is False  # the old branch is kept


def test_conversations_are_listed_newest_first_and_searchable(client, fake):
    ask(client, "关于花店的问题")
    ask(client, "关于天气的问题")
    listing = client.get("/conversations").text
    assert listing.index("关于天气") < listing.index("关于花店")
    found = client.get("/conversations", query_string={"q": "花店"}).text
    assert "关于花店" in found and "关于天气" not in found
    by_content = client.get("/conversations", query_string={"q": "下面是一段代码"}).text
    assert "关于花店" in by_content and "关于天气" in by_content


def test_rename_and_delete_a_conversation(client, fake):
    message = ask(client, "你好")
    cid = message.conversation_id
    html = client.post(f"/c/{cid}/title", data={"title": " 新名字 "}, headers=HX).text
    assert "新名字" in html
    assert Conversation.get_by_id(cid).title == "新名字"
    client.delete(f"/c/{cid}", headers=HX)
    assert Conversation.get_or_none(Conversation.id == cid) is None
    assert Message.select().count() == 0


def test_a_new_conversation_gets_an_options_bar_that_saves_changes(client, fake):
    response = send(client, "你好")
    cid = Conversation.get().id
    assert f'hx-post="/c/{cid}/options"' in response.text
    assert "<title>你好 · 墨言 Moyan</title>" in response.text
    read_stream(client, answer_id(response))
    second = send(client, "再问", conversation_id=cid)
    assert 'id="welcome"' not in second.text


def test_conversation_options_are_kept(client, fake):
    message = ask(client, "你好")
    cid = message.conversation_id
    response = client.post(f"/c/{cid}/options", headers=HX, data={
        "provider": "openrouter", "model": "openai/gpt-4o", "system_prompt": "简短回答"})
    assert response.status_code == 204
    conversation = Conversation.get_by_id(cid)
    assert (conversation.provider, conversation.model, conversation.system_prompt) == (
        "openrouter", "openai/gpt-4o", "简短回答")


@pytest.mark.parametrize("data, sentence", [
    ({"text": "   "}, "不能为空"),
    ({"text": "x" * 100_001}, "太长"),
    ({"text": "你好", "provider": "evil"}, "未知的模型服务"),
    ({"text": "你好", "model": "<script>"}, "模型名称"),
])
def test_bad_input_is_refused_and_changes_nothing(client, fake, data, sentence):
    response = client.post("/send", data={"provider": "dashscope", **data}, headers=HX)
    assert response.status_code == 422
    assert sentence in response.text
    assert response.headers["HX-Retarget"] == "#alerts"
    assert Conversation.select().count() == 0
    assert not fake.requests


def test_a_model_answer_with_html_is_shown_as_text(client, fake):
    message = ask(client, "<img src=x onerror=alert(1)>")
    page = client.get(f"/c/{message.conversation_id}").text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_an_answer_interrupted_by_a_restart_is_marked(app, client, fake):
    message = ask(client, "你好")
    Message.update(status=Message.STREAMING).where(Message.id == message.id).execute()
    stream = read_stream(client, message.id)
    assert events(stream) == ["done"]
    assert Message.get_by_id(message.id).status == Message.INTERRUPTED
    assert "重新生成" in stream


def test_a_pinned_conversation_stays_on_top(client, fake):
    first = ask(client, "置顶的对话")
    ask(client, "后来的对话")
    client.post(f"/c/{first.conversation_id}/pin", headers=HX)
    listing = client.get("/conversations").text
    assert listing.index("置顶的对话") < listing.index("后来的对话")
    assert "取消置顶" in listing


def test_the_sidebar_shows_fifty_conversations_and_loads_the_rest_when_scrolled(client, fake):
    for n in range(60):
        Conversation.create(title=f"对话{n}")
    first = client.get("/conversations", headers=HX).text
    assert len(re.findall(r'id="conv-\d+"', first)) == 50
    assert "对话59" in first and "对话9<" not in first
    assert 'hx-get="/conversations?offset=50"' in first and "intersect once" in first
    rest = client.get("/conversations", query_string={"offset": 50}, headers=HX).text
    assert len(re.findall(r'id="conv-\d+"', rest)) == 10
    assert "对话0<" in rest and "offset=" not in rest


def test_a_long_conversation_shows_its_last_forty_messages_and_loads_older_ones_on_scroll(client, fake):
    conversation = Conversation.create(title="长对话")
    for n in range(100):
        Message.create(conversation=conversation, role="user", content=f"第{n}条")
    page = client.get(f"/c/{conversation.id}").text
    assert "第99条" in page and "第60条" in page and "第59条" not in page
    older_url = re.search(r'hx-get="(/c/\d+/messages\?before=\d+)"', page).group(1)
    older = client.get(older_url, headers=HX).text
    assert "第20条" in older and "第59条" in older and "第60条" not in older
    oldest_url = re.search(r'hx-get="(/c/\d+/messages\?before=\d+)"', older).group(1)
    oldest = client.get(oldest_url, headers=HX).text
    assert "第0条" in oldest and "第19条" in oldest and "/messages?before=" not in oldest


def fts_integrity_check():
    database.execute_sql("INSERT INTO message_fts(message_fts, rank) VALUES ('integrity-check', 1)")


def test_a_two_character_chinese_word_finds_the_conversation(client, fake):
    ask(client, "一间花店的故事")
    ask(client, "关于天气")
    found = client.get("/conversations", query_string={"q": "花店"}).text
    assert "一间花店的故事" in found and "关于天气" not in found


@pytest.mark.sqlite_only  # FTS5
def test_finished_messages_are_searched_through_the_trigram_index(client, fake):
    message = ask(client, "关于花店的问题")
    rows = database.execute_sql("SELECT rowid FROM message_fts WHERE message_fts MATCH ?",
                          ['"一段代码"']).fetchall()
    assert rows == [(message.id,)]
    assert "关于花店" in client.get("/conversations", query_string={"q": "一段代码"}).text


@pytest.mark.sqlite_only  # FTS5
def test_the_search_index_follows_edits_stops_and_deletes(client, fake):
    first = ask(client, "第一句")
    question = Message.get(Message.content == "第一句")
    edited = client.post(f"/m/{question.id}/edit", data={"text": "改过的第一句"}, headers=HX)
    read_stream(client, answer_id(edited))  # the index leaves out a streaming answer: let this one end
    slow = answer_id(send(client, "你好", conversation_id=first.conversation_id, model="qwen-slow"))
    wait_until_streaming(client, slow)
    client.post(f"/m/{slow}/stop", headers=HX)
    fts_integrity_check()
    assert "新对话" not in client.get("/conversations", query_string={"q": "改过的"}).text
    assert "第一句" in client.get("/conversations", query_string={"q": "改过的"}).text
    client.delete(f"/c/{first.conversation_id}", headers=HX)
    fts_integrity_check()
    assert "第一句" not in client.get("/conversations", query_string={"q": "改过的"}).text


@pytest.mark.sqlite_only  # FTS5
def test_an_existing_database_gets_a_search_index_of_its_messages(app, client, fake):
    ask(client, "关于天气的问题")
    for trigger in ("insert", "delete", "update"):  # as before the index existed
        database.execute_sql(f"DROP TRIGGER message_fts_{trigger}")
    database.execute_sql("DROP TABLE message_fts")
    create_search_index()
    fts_integrity_check()
    assert "关于天气" in client.get("/conversations", query_string={"q": "一段代码"}).text


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only")
def test_on_postgresql_the_search_uses_the_trigram_index(client, fake):
    ask(client, "一间花店的故事")
    database.execute_sql("SET enable_seqscan = off")  # a tiny table would be scanned otherwise
    sql, params = Message.select().where(Message.matching("花店的")).sql()
    plan = " ".join(row[0] for row in database.execute_sql("EXPLAIN " + sql, params).fetchall())
    assert "message_content_trgm" in plan
    assert "一间花店" in client.get("/conversations", query_string={"q": "花店的"}).text


def test_the_first_exchange_names_the_conversation_with_a_short_model_call(client, fake):
    message = ask(client, "怎样养多肉植物？")
    title_call = fake.requests[-1]["json"]  # made after the answer, before it is done
    assert is_title_call(title_call) and title_call["enable_thinking"] is False
    assert Conversation.get_by_id(message.conversation_id).title == "收到：怎样养多肉植物"
    fake.clear()
    ask(client, "还有呢", conversation_id=message.conversation_id)
    assert [is_title_call(r["json"]) for r in fake.requests] == [False]  # no second title call


def test_a_thinking_only_model_names_the_conversation_too(client, fake):
    message = ask(client, "你好", model="qwq-plus")  # it refuses a non-streamed call
    assert Conversation.get_by_id(message.conversation_id).title == "收到：你好"
    assert message.status == Message.DONE


def test_streamed_tokens_are_escaped_so_no_tag_or_htmx_attribute_reaches_the_page(client, fake):
    payload = '<div hx-get="/x" hx-trigger="load">'
    stream = read_stream(client, answer_id(send(client, payload)))
    pieces = ["\n".join(line[len("data: "):] for line in event.splitlines()[1:])
              for event in stream.split("\n\n") if event.startswith("event: content\n")]
    assert len(pieces) > 5
    assert str(escape(REPLY(payload))).endswith("".join(pieces))  # the start may be in the snapshot
    assert not any("<" in piece or '"' in piece for piece in pieces)


@pytest.mark.parametrize("method, url", [
    ("GET", "/c/{id}"), ("POST", "/c/{id}/title"), ("POST", "/c/{id}/options"), ("DELETE", "/c/{id}"),
    ("GET", "/m/{id}"), ("GET", "/m/{id}/edit"), ("POST", "/m/{id}/edit"), ("POST", "/m/{id}/stop"),
    ("POST", "/m/{id}/regenerate"), ("GET", "/m/{id}/stream"),
])
def test_an_id_too_big_for_the_database_is_not_found(client, method, url):
    response = client.open(url.format(id=2**63), method=method, data={"text": "你好"}, headers=HX)
    assert response.status_code == 404


@pytest.mark.parametrize("conversation_id", [str(2**63), "-1", "1.0", "abc"])
def test_sending_to_a_conversation_that_cannot_exist_is_not_found(client, fake, conversation_id):
    response = send(client, "你好", conversation_id=conversation_id)
    assert response.status_code == 404
    assert Message.select().count() == 0
    assert not fake.requests


def test_painting_from_the_chat_puts_a_polling_card_in_the_conversation(client, fake):
    response = send(client, "一间花店", paint="on")
    assert 'hx-trigger="load delay:2s"' in response.text
    task = ImageTask.get()
    assert (task.prompt, task.model, task.n) == ("一间花店", "wan2.2-t2i-flash", 1)
    assert task.provider_task_id  # submitted with the request
    assert wait_for(task.id).status == ImageTask.SUCCEEDED
    answer = Message.get(Message.role == "assistant")
    page = client.get(f"/c/{answer.conversation_id}").text
    assert "<img" in page and "/files/thumbs/" in page
    assert Image.select().count() == 1 and "一间花店" in client.get("/gallery").text
    assert not [r for r in fake.requests if r["path"].endswith("/chat/completions")]


def test_a_painting_in_the_chat_is_left_out_of_the_next_prompt(client, fake):
    send(client, "一间花店", paint="on")
    cid = Conversation.get().id
    message = ask(client, "你好", conversation_id=cid)
    assert message.status == Message.DONE
    roles = [m["role"] for m in last_stream_call(fake)["json"]["messages"]]
    assert roles == ["user", "user"]


def test_listeners_are_let_go_even_when_the_final_save_fails(app, client, fake, monkeypatch):
    from peewee import OperationalError
    from services.generation import Answer
    generations = app.extensions["generations"]
    message_id = answer_id(send(client, "你好", model="qwen-slow"))
    listener = generations.follow(message_id)
    assert next(listener)[0] == "snapshot"

    def database_gone(answer, fields):
        raise OperationalError("too many clients already")
    monkeypatch.setattr(Answer, "save_final", database_gone)
    with pytest.raises(OperationalError):
        generations.stop(message_id)
    list(listener)  # it ends instead of waiting for ever
    assert not generations.is_generated(message_id)
