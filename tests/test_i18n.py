"""Languages: Simplified Chinese by default, English by the `lang` cookie; nothing untranslated."""
import datetime
import glob
import os
import re
import subprocess
import sys

from babel.messages.pofile import read_po

from helpers import HX, ROOT, ask, imported, painted, save_settings

CJK = re.compile("[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
EN_CATALOGUE = os.path.join(ROOT, "translations", "en", "LC_MESSAGES", "messages.po")
NOT_SHOWN = [re.compile(p, re.S) for p in (
    r"\{#.*?#\}",  # Jinja comments
    r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}",
    r"""\b(?:_|gettext|ngettext)\(\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")]


def untranslated_lines(text):
    for pattern in NOT_SHOWN:
        text = pattern.sub("", text)
    return [line.strip() for line in text.splitlines() if CJK.search(line)]


def test_every_template_string_is_marked_for_translation():
    found = {}
    for path in glob.glob(os.path.join(ROOT, "templates", "*.html")) + glob.glob(os.path.join(ROOT, "partials", "*.html")):
        with open(path, encoding="utf-8") as f:
            lines = untranslated_lines(f.read())
        if lines:
            found[os.path.relpath(path, ROOT)] = lines
    assert not found, f"wrap these in _(…) or {{% trans %}}: {found}"


def test_the_guard_sees_a_bare_string_and_passes_a_marked_one():
    assert untranslated_lines('<p>{{ _("新对话") }}</p>{# 注释 #}{% trans n=1 %}共 {{ n }} 条{% endtrans %}') == []
    assert untranslated_lines('<button aria-label="关闭">x</button>') == ['<button aria-label="关闭">x</button>']


def test_every_string_in_the_code_has_an_english_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "pybabel"), "-q", "extract", "-F", "babel.cfg",
                    "-k", "lazy_gettext", "-o", str(pot), "."], cwd=ROOT, check=True)
    with open(pot, "rb") as f:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    with open(EN_CATALOGUE, "rb") as f:
        english = {(m.id if isinstance(m.id, str) else m.id[0]): m for m in read_po(f) if m.id}
    missing = sorted(msgid for msgid in wanted if msgid not in english
                     or english[msgid].fuzzy or not all(english[msgid].string if isinstance(english[msgid].string, tuple)
                                                        else [english[msgid].string]))
    assert not missing, f"run `make translations` and translate: {missing}"


def english(client):
    client.set_cookie("lang", "en")
    return client


def visible_cjk(html):
    """Chinese left in an English page, apart from the switch back to Chinese, named in Chinese."""
    html = re.sub(r'<a href="/lang/zh[^>]*>.*?</a>', "", html, flags=re.S)
    return CJK.findall(html)


def test_pages_are_english_with_the_cookie(client, fake):
    english(client)
    pages = {"/": "New chat", "/settings": "Settings", "/images": "Paint", "/gallery": "Gallery",
             "/usage": "Usage"}
    for url, word in pages.items():
        html = client.get(url).text
        assert word in html
        assert '<html lang="en"' in html
        assert not visible_cjk(html), (url, visible_cjk(html)[:20])


def test_chinese_is_the_default(client):
    html = client.get("/").text
    assert '<html lang="zh-CN"' in html and "新对话" in html and ">EN</a>" in html


def test_the_login_page_is_english_too(app):
    client = english(app.test_client())
    client.get("/settings")
    with client.session_transaction() as session:
        token = session["csrf_token"]
    client.post("/settings/password", data={"password": "a-long-password", "password_again": "a-long-password"},
                headers={**HX, "X-CSRF-Token": token})
    html = english(app.test_client()).get("/login").text
    assert "Log in to Moyan" in html and not visible_cjk(html)


def test_a_chat_with_an_answer_is_english_apart_from_what_was_said(client, fake):
    english(client)
    response = client.post("/send", data={"text": "hello", "provider": "dashscope", "model": "",
                                          "system_prompt": ""}, headers=HX)
    message_id = int(re.findall(r'id="msg-(\d+)"', response.text)[-1])
    client.get(f"/m/{message_id}/stream").get_data()
    from models import Message
    message = Message.get_by_id(message_id)
    html = client.get(f"/c/{message.conversation_id}").text
    html = re.sub(r'<div class="markdown">.*?</div>', "", html, flags=re.S)  # the model's words
    html = html.replace(message.conversation.title, "")
    assert "Regenerate" in html and "tokens" in html
    assert not visible_cjk(html), visible_cjk(html)[:20]


def test_an_error_sentence_is_english_in_an_english_session(client, fake):
    english(client)
    response = client.post("/settings/dashscope/test", data={"region": "custom", "base_url": fake.dashscope_base,
                                                            "api_key": "sk-wrong-key-0000-9999"}, headers=HX)
    assert "Connection failed: the API key is invalid" in response.text
    response = client.post("/send", data={"text": "", "provider": "dashscope"}, headers=HX)
    assert "The message is empty." in response.text


def test_a_saved_error_is_shown_in_the_readers_language(client, fake):
    from models import Conversation, Message
    conversation = Conversation.create(title="t")
    Message.create(conversation=conversation, role="assistant", status=Message.ERROR,
                   error="请求太频繁，已达到速率上限，请稍等片刻再试。")
    assert "请求太频繁" in client.get(f"/c/{conversation.id}").text
    assert "Too many requests" in english(client).get(f"/c/{conversation.id}").text


def test_an_error_saved_before_errors_had_codes_is_shown_as_it_was_saved(client):
    from models import Conversation, Message
    conversation = Conversation.create(title="t")
    Message.create(conversation=conversation, role="assistant", status=Message.ERROR,
                   error="The server said <b>no</b>.")
    assert "The server said &lt;b&gt;no&lt;/b&gt;." in english(client).get(f"/c/{conversation.id}").text


def test_an_error_saved_by_a_background_thread_is_in_each_readers_language(client, fake):
    """An answer fails in its own thread, which has no reader: whoever reads the page is told
    why in their language."""
    save_settings(client, "dashscope", region="custom", base_url=fake.dashscope_base, api_key="sk-wrong-key-0000-9999")
    page = f"/c/{ask(client, '你好').conversation_id}"
    assert "API Key 无效" in client.get(page).text
    assert "The API key is invalid" in english(client).get(page).text


def test_an_answer_cut_by_a_restart_says_so_in_english(client):
    from models import Conversation, Message
    conversation = Conversation.create(title="t")
    cut = Message.create(conversation=conversation, role="assistant", status=Message.STREAMING, content="一半")
    Message.mark_interrupted(cut.id)
    assert "The server restarted while answering" in english(client).get(f"/c/{conversation.id}").text


def test_a_painting_asked_in_english_tells_a_chinese_reader_in_chinese(client, fake):
    task = painted(english(client), "画 [partial]", n="3")
    assert task.error.startswith('{"code": "painting_partial", "kept": 2, "failed": 1')  # no sentence saved
    assert "2 painted, 1 failed: " in client.get(f"/images/tasks/{task.id}").text
    client.set_cookie("lang", "zh")
    assert "生成了 2 张，另有 1 张失败：" in client.get(f"/images/tasks/{task.id}").text


def test_an_import_refused_says_why_in_each_readers_language(client):
    refused = imported(client, b'{"format": "something else", "conversations": []}')
    assert "这不是墨言导出的对话文件（JSON）。" in refused.text
    job = re.search(r'id="import-job-(\d+)"', refused.text).group(1)
    assert "This is not a chat export (JSON) from Moyan." in english(client).get(f"/import/{job}", headers=HX).text


def test_the_switch_sets_the_cookie_for_a_year_and_goes_back(client):
    response = client.get("/lang/en?next=/settings")
    assert response.status_code == 302 and response.headers["Location"] == "/settings"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("lang=en") and "Max-Age=31536000" in cookie and "HttpOnly" in cookie
    assert "Settings" in client.get("/settings").text
    client.get("/lang/zh?next=/")
    assert "新对话" in client.get("/").text


def test_the_switch_goes_back_only_into_moyan(client):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", ""):
        response = client.get("/lang/en", query_string={"next": target})
        assert response.headers["Location"] == "/", target


def test_an_unknown_language_changes_nothing(client):
    response = client.get("/lang/xx?next=/")
    assert "Set-Cookie" not in response.headers or "lang=" not in response.headers["Set-Cookie"]
    assert "新对话" in client.get("/").text


def test_dates_and_numbers_follow_the_language(client, fake):
    from models import Conversation, Message
    conversation = Conversation.create(title="t")
    Message.create(conversation=conversation, role="assistant", status=Message.DONE, content="ok",
                   model="qwen-plus", total_tokens=12345, prompt_tokens=345, completion_tokens=12000,
                   created_at=datetime.datetime(2026, 3, 7, 19, 5))
    chinese = client.get(f"/c/{conversation.id}").text
    assert "2026/3/7 19:05" in chinese and "12,345 tokens" in chinese
    text = english(client).get(f"/c/{conversation.id}").text
    assert "3/7/26, 7:05\u202fPM" in text and "12,345 tokens" in text


def test_the_usage_chart_names_its_busiest_day_per_language(client, fake):
    from models import UsageRecord
    day = datetime.datetime.now() - datetime.timedelta(days=1)
    UsageRecord.create(kind="answer", provider="dashscope", model="qwen-plus", prompt_tokens=1000,
                       completion_tokens=3000, at=day)
    assert f"最多的一天是 {day.month}月{day.day}日，4,000 tokens" in client.get("/usage").text
    month = day.strftime("%b")  # the C locale's English month abbreviation
    assert f"the busiest day was {month} {day.day}, with 4,000 tokens" in english(client).get("/usage").text
