"""Regenerate and edit keep what was there: versions of a turn, branches from an edit."""
import json

from fake_upstream import REPLY
from helpers import HX, ask, imported, read_stream, sent_texts
from models import Conversation, Message


def visible(conversation_id):
    return [(m.role, m.content) for m in Conversation.get_by_id(conversation_id).messages()]


def rewrite(answer, text):
    Message.update(content=text, content_html=None).where(Message.id == answer.id).execute()


def newest_answer():
    return Message.select().where(Message.role == "assistant").order_by(Message.id.desc()).get()


def regenerate(client, answer):
    client.post(f"/m/{answer.id}/regenerate", headers=HX)
    read_stream(client, newest_answer().id)
    return newest_answer()


def edit(client, question, text):
    client.post(f"/m/{question.id}/edit", data={"text": text}, headers=HX)
    read_stream(client, newest_answer().id)
    return newest_answer()


def test_regenerating_keeps_every_earlier_answer_as_a_version_of_the_turn(client, fake):
    first = ask(client, "你好")
    rewrite(first, "第一版回答")
    second = regenerate(client, first)
    third = regenerate(client, second)
    page = client.get(f"/c/{first.conversation_id}").text
    assert "3 / 3" in page and f'hx-post="/m/{second.id}/choose"' in page
    html = client.post(f"/m/{first.id}/choose", headers=HX).text
    assert "第一版回答" in html and "1 / 3" in html
    assert visible(first.conversation_id) == [("user", "你好"), ("assistant", "第一版回答")]
    assert Message.get_by_id(third.id).is_current is False


def test_later_turns_build_on_the_chosen_version(client, fake):
    first = ask(client, "你好")
    rewrite(first, "第一版回答")
    regenerate(client, first)
    client.post(f"/m/{first.id}/choose", headers=HX)
    ask(client, "接着说", conversation_id=first.conversation_id)
    assert sent_texts(fake) == ["你好", "第一版回答", "接着说"]


def test_regenerating_a_middle_answer_keeps_the_later_turns_on_the_old_version(client, fake):
    first = ask(client, "第一句")
    ask(client, "第二句", conversation_id=first.conversation_id)
    regenerate(client, first)
    assert [text for _, text in visible(first.conversation_id)] == ["第一句", REPLY("第一句")]
    client.post(f"/m/{first.id}/choose", headers=HX)
    assert [text for _, text in visible(first.conversation_id)] == ["第一句", REPLY("第一句"), "第二句", REPLY("第二句")]


def test_editing_starts_a_branch_and_the_old_one_stays_reachable(client, fake):
    first = ask(client, "第一句")
    ask(client, "第二句", conversation_id=first.conversation_id)
    ask(client, "第三句", conversation_id=first.conversation_id)
    question = Message.get(Message.content == "第二句")
    edit(client, question, "改过的第二句")
    assert sent_texts(fake) == ["第一句", REPLY("第一句"), "改过的第二句"]  # exactly the visible path
    conversation_id = first.conversation_id
    assert [text for _, text in visible(conversation_id)] == ["第一句", REPLY("第一句"), "改过的第二句", REPLY("改过的第二句")]
    page = client.get(f"/c/{conversation_id}").text
    assert "2 / 2" in page
    client.post(f"/m/{question.id}/choose", headers=HX)
    assert [text for _, text in visible(conversation_id)][2:] == ["第二句", REPLY("第二句"), "第三句", REPLY("第三句")]
    ask(client, "第四句", conversation_id=conversation_id)
    assert sent_texts(fake)[-3:] == ["第三句", REPLY("第三句"), "第四句"]


def test_editing_the_first_message_branches_from_the_start(client, fake):
    first = ask(client, "第一句")
    question = Message.get(Message.content == "第一句")
    edit(client, question, "新的开头")
    assert sent_texts(fake) == ["新的开头"]
    assert "2 / 2" in client.get(f"/c/{first.conversation_id}").text


def test_markdown_shows_the_visible_path_and_json_keeps_every_version(client, fake):
    first = ask(client, "第一句")
    rewrite(first, "旧回答")
    regenerate(client, first)
    conversation_id = first.conversation_id
    markdown = client.get(f"/c/{conversation_id}/export.md").get_data(as_text=True)
    assert REPLY("第一句").splitlines()[0] in markdown and "旧回答" not in markdown
    exported = json.loads(client.get(f"/c/{conversation_id}/export.json").get_data())
    assert len(exported["conversations"][0]["messages"]) == 3
    path = visible(conversation_id)
    client.delete(f"/c/{conversation_id}", headers=HX)  # the same export is skipped while it is here
    imported(client, json.dumps(exported).encode())
    copy = Conversation.select().order_by(Conversation.id.desc()).get()
    assert visible(copy.id) == path
    old = Message.get((Message.conversation == copy) & (Message.content == "旧回答"))
    client.post(f"/m/{old.id}/choose", headers=HX)
    assert visible(copy.id) == [("user", "第一句"), ("assistant", "旧回答")]


def test_a_version_1_export_imports_as_one_path(client, fake):
    data = {"format": "moyan.conversations", "version": 1, "conversations": [{"title": "旧文件", "messages": [
        {"role": "user", "content": "问"}, {"role": "assistant", "content": "答", "status": "done"},
        {"role": "user", "content": "再问"}]}]}
    imported(client, json.dumps(data).encode())
    conversation = Conversation.get(Conversation.title == "旧文件")
    assert [text for _, text in visible(conversation.id)] == ["问", "答", "再问"]


def test_search_finds_text_in_any_version(client, fake):
    first = ask(client, "你好")
    rewrite(first, "藏在旧版本里的独特句子")
    regenerate(client, first)
    html = client.get("/conversations", query_string={"q": "独特句子"}).text
    assert f"/c/{first.conversation_id}" in html
