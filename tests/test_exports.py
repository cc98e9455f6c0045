"""Export one or all conversations, and import a JSON export back with nothing lost."""
import json

from app import create_app
from helpers import HX, ask, imported, new_database_url
from models import Conversation, Message


def without_export_time(data):
    return {**data, "exported_at": None}


def test_one_conversation_exports_as_markdown_and_json(client, fake):
    message = ask(client, "你好", system_prompt="你是老师")
    cid = message.conversation_id
    markdown = client.get(f"/c/{cid}/export.md")
    assert markdown.headers["Content-Type"].startswith("text/markdown")
    assert "attachment" in markdown.headers["Content-Disposition"]
    text = markdown.get_data(as_text=True)
    assert text.startswith("# 收到：你好") and "**你**" in text and "```python" in text and "系统提示词：你是老师" in text
    data = client.get(f"/c/{cid}/export.json").get_json()
    assert data["format"] == "moyan.conversations"
    [conversation] = data["conversations"]
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["total_tokens"] == message.total_tokens


def test_export_all_then_import_into_a_new_moyan_loses_nothing(client, fake, tmp_path, monkeypatch, app,
                                                                request):
    first = ask(client, "第一段", model="qwen3-32b", thinking="on")
    ask(client, "接着问", conversation_id=first.conversation_id)
    ask(client, "第二段", provider="openrouter", model="openai/gpt-4o")
    client.post(f"/c/{first.conversation_id}/pin", headers=HX)
    exported = client.get("/export.json").get_json()
    assert len(exported["conversations"]) == 2
    assert "sk-" not in json.dumps(exported)

    app.extensions["painter"].stop()
    monkeypatch.setenv("MOYAN_DATA_DIR", str(tmp_path / "other"))
    monkeypatch.setenv("DATABASE_URL", new_database_url(request))
    other = create_app({"TESTING": True, "IMAGE_WORKER": False})
    other_client = other.test_client()
    other_client.get("/settings")
    with other_client.session_transaction() as session:
        other_client.environ_base["HTTP_X_CSRF_TOKEN"] = session["csrf_token"]
    result = imported(other_client, json.dumps(exported, ensure_ascii=False).encode())
    assert "已导入 2 段对话" in result.text
    again = other_client.get("/export.json").get_json()
    assert without_export_time(again) == without_export_time(exported)
    assert Message.select().where(Message.reasoning != "").count() == 1


def upload(client, data):
    return imported(client, json.dumps(data, ensure_ascii=False).encode())


def test_importing_the_same_export_again_skips_it_or_takes_the_newer_copy(client, fake):
    first = ask(client, "第一段")
    ask(client, "第二段")
    exported = client.get("/export.json").get_json()
    result = upload(client, exported)
    assert "2 段对话已经在这里，跳过了" in result.text and "已导入" not in result.text
    assert Conversation.select().count() == 2
    newer = exported["conversations"][0]
    assert newer["export_id"] == Conversation.get_by_id(first.conversation_id).export_id
    newer["updated_at"] = "2099-01-01T00:00:00"
    newer["title"] = "改过的标题"
    newer["messages"] = newer["messages"][:1]
    exported["conversations"].append({**newer, "export_id": "ffffffffffffffffffffffffffffffff", "title": "新的"})
    result = upload(client, exported)
    assert "已导入 1 段对话" in result.text
    assert "1 段已有的对话换成了文件里更新的版本" in result.text and "1 段对话已经在这里" in result.text
    assert Conversation.select().count() == 3
    updated = Conversation.get_by_id(first.conversation_id)
    assert updated.title == "改过的标题" and updated.messages().count() == 1


def test_a_file_that_is_not_an_export_is_refused_and_imports_nothing(client):
    for content in (b"not json", b'{"hello": 1}', json.dumps({"format": "moyan.conversations", "conversations": [
            {"title": "x", "messages": [{"role": "system", "content": "x"}]}]}).encode()):
        response = imported(client, content)
        assert "hx-trigger" not in response.text
        assert "没有导入" in response.text or "不是墨言导出" in response.text or "不是有效的 JSON" in response.text
    assert Conversation.select().count() == 0


def test_a_failed_answer_exports_its_sentence_chinese_in_json_and_the_readers_in_markdown(client):
    conversation = Conversation.create(title="t")
    Message.create(conversation=conversation, role="assistant", status=Message.ERROR, error="RateLimited")
    data = client.get(f"/c/{conversation.id}/export.json").get_json()
    assert data["conversations"][0]["messages"][0]["error"] == "请求太频繁，已达到速率上限，请稍等片刻再试。"
    assert "> 请求太频繁" in client.get(f"/c/{conversation.id}/export.md").text
    client.set_cookie("lang", "en")
    assert "> Too many requests" in client.get(f"/c/{conversation.id}/export.md").text
