"""Access password, CSRF, host allowlist, headers, and keys that never leak."""
import logging
import os
import re
import stat

import pytest

from app import create_app
from helpers import HX, ask, login, painted
from models import Conversation, Image, ImageTask, Message, Setting

SECRET_KEY_VALUE = "sk-fake7777secret6666never5555seen"


# -- CSRF -------------------------------------------------------------------

@pytest.mark.parametrize("method, url, data", [
    ("post", "/send", {"text": "你好", "provider": "dashscope"}),
    ("post", "/settings/dashscope", {"region": "cn", "api_key": SECRET_KEY_VALUE}),
    ("post", "/settings/password", {"password": "12345678", "password_again": "12345678"}),
    ("post", "/images", {"prompt": "花", "size": "1024*1024", "n": "1", "provider": "dashscope",
                         "model": "wan2.2-t2i-flash"}),
])
def test_a_state_change_without_the_csrf_token_is_refused_and_changes_nothing(app, fake, method, url, data):
    client = app.test_client()
    client.get("/")
    response = getattr(client, method)(url, data=data, headers=HX)
    assert response.status_code == 400
    assert "刷新页面" in response.text
    assert Conversation.select().count() == 0 and ImageTask.select().count() == 0
    assert set(Setting.all_values()) == {"secret_key"}
    assert not fake.requests


def test_a_wrong_csrf_token_is_refused(app, client):
    message = ask(client, "你好")
    response = client.delete(f"/c/{message.conversation_id}", headers={**HX, "X-CSRF-Token": "forged"})
    assert response.status_code == 400
    assert Conversation.select().count() == 1


def test_htmx_sends_the_token_from_the_body_attribute(client):
    page = client.get("/").text
    token = client.environ_base["HTTP_X_CSRF_TOKEN"]
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page


# -- Headers ----------------------------------------------------------------

def test_every_response_carries_the_security_headers(client, fake):
    message = ask(client, "你好")
    for url in ("/", "/settings", "/static/app.css", f"/m/{message.id}/stream", "/gallery", "/nothing-here"):
        headers = client.get(url).headers
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script_and_htmx_may_not_eval(client):
    for url in ("/", "/settings", "/images", "/gallery"):
        html = client.get(url).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"<[^>]+\son[a-z]+=", html)
        assert '"allowEval":false' in html
        assert "hx-on" not in html


def test_an_unknown_host_header_is_refused(client):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "127.0.0.1:5000"}).status_code == 200


# -- Password ---------------------------------------------------------------

def test_with_a_password_every_page_fragment_stream_and_image_needs_a_login(locked_app):
    client = locked_app.test_client()
    assert client.get("/").status_code == 302
    assert client.get("/").headers["Location"].startswith("/login")
    fragment = client.get("/conversations", headers=HX)
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"] == "/login"
    for url in ("/m/1/stream", "/files/2026/01/x.png", "/gallery/1", "/images/tasks/1", "/settings"):
        assert client.get(url, headers={"Accept": "*/*"}).status_code in (302, 401), url
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/login").status_code == 200


def test_an_unknown_host_is_refused_with_a_password_set_too(locked_app):
    client = locked_app.test_client()
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/login").status_code == 200


def test_a_wrong_password_is_refused_and_the_right_one_lets_in(locked_app):
    client = locked_app.test_client()
    wrong = login(client, "wrong")
    assert wrong.status_code == 401 and "密码不对" in wrong.text
    right = login(client, "correct horse")
    assert right.status_code == 302
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/").status_code == 200


def test_the_session_cookie_is_secure_over_https(locked_app):
    client = locked_app.test_client()
    page = client.get("/login", base_url="https://localhost").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"password": "correct horse", "csrf_token": token},
                           base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]


def test_repeated_wrong_passwords_are_slowed_down(locked_app):
    client = locked_app.test_client()
    for _ in range(5):
        assert "请重试" in login(client, "guess").text
    slowed = login(client, "guess")
    assert slowed.status_code == 401 and "多等一会儿" in slowed.text
    assert client.get("/").status_code == 302


def test_a_forged_forwarded_address_does_not_escape_the_slowdown(locked_app):
    client = locked_app.test_client()
    for number in range(6):
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"10.0.0.{number}"
        response = login(client, "guess")
    assert "多等一会儿" in response.text


def test_behind_a_proxy_the_forwarded_address_and_scheme_are_used(fake, tmp_path, monkeypatch):
    for name, value in {"MOYAN_DATA_DIR": str(tmp_path / "proxied"), "MOYAN_PASSWORD": "correct horse",
                        "MOYAN_PROXIES": "1"}.items():
        monkeypatch.setenv(name, value)
    app = create_app({"TESTING": True, "LOGIN_FAILURE_DELAY": 0, "IMAGE_WORKER": False})
    guesser, owner = app.test_client(), app.test_client()
    guesser.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    for _ in range(6):
        response = login(guesser, "guess")
    assert "多等一会儿" in response.text
    owner.environ_base.update(HTTP_X_FORWARDED_FOR="198.51.100.2", HTTP_X_FORWARDED_PROTO="https")
    let_in = login(owner, "correct horse")
    assert let_in.status_code == 302 and "Secure" in let_in.headers["Set-Cookie"]


def test_login_only_redirects_back_into_moyan(locked_app):
    client = locked_app.test_client()
    page = client.get("/login?next=//evil.example/x").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"password": "correct horse", "csrf_token": token,
                                           "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_a_password_set_in_the_settings_locks_out_other_browsers(app, client):
    response = client.post("/settings/password", data={"password": "abcdefgh1", "password_again": "abcdefgh1"},
                           headers=HX)
    assert "已保存" in response.text
    assert client.get("/").status_code == 200  # whoever set it stays in
    assert "abcdefgh1" not in Setting.get_value("password_hash")
    stranger = app.test_client()
    assert stranger.get("/").status_code == 302


def test_a_short_or_mismatched_password_is_refused(client):
    short = client.post("/settings/password", data={"password": "abc", "password_again": "abc"}, headers=HX)
    assert short.status_code == 422 and "至少 8 个字符" in short.text
    mismatch = client.post("/settings/password", data={"password": "abcdefgh1", "password_again": "abcdefgh2"},
                           headers=HX)
    assert "不一致" in mismatch.text
    assert Setting.get_value("password_hash") is None


# -- Binding ----------------------------------------------------------------

def test_moyan_refuses_to_serve_a_network_without_a_password(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("MOYAN_DATA_DIR", str(tmp_path / "open"))
    monkeypatch.setenv("MOYAN_HOST", "0.0.0.0")
    with pytest.raises(SystemExit, match="MOYAN_PASSWORD"):
        create_app({"IMAGE_WORKER": False})
    monkeypatch.setenv("MOYAN_ALLOW_OPEN", "1")
    create_app({"IMAGE_WORKER": False})
    monkeypatch.delenv("MOYAN_ALLOW_OPEN")
    monkeypatch.setenv("MOYAN_PASSWORD", "long enough")
    create_app({"IMAGE_WORKER": False})


# -- Files and keys -----------------------------------------------------------

@pytest.mark.sqlite_only
def test_the_data_directory_and_database_are_private(app):
    data_dir = app.config["DATA_DIR"]
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(data_dir, "moyan.db")).st_mode) == 0o600


def test_a_saved_key_appears_in_no_page_fragment_stream_or_log(client, fake, caplog):
    caplog.set_level(logging.DEBUG)
    client.post("/settings/dashscope", data={"region": "custom", "base_url": fake.dashscope_base,
                                             "api_key": SECRET_KEY_VALUE}, headers=HX)
    client.post("/settings/openrouter", data={"api_key": SECRET_KEY_VALUE + "or"}, headers=HX)
    message = ask(client, "你好")
    failed = ask(client, "再来", conversation_id=message.conversation_id, model="fault-drop")
    task = painted(client, "一间花店")
    image = Image.get()
    bodies = []
    for url in ("/", f"/c/{message.conversation_id}", "/settings", "/conversations?q=你", f"/m/{message.id}",
                f"/m/{failed.id}", f"/m/{message.id}/stream", f"/m/{message.id - 1}/edit", "/images",
                f"/images/tasks/{task.id}", "/gallery", f"/gallery/{image.id}", f"/images?from={image.id}",
                "/login", "/nothing"):
        bodies.append(client.get(url, headers=HX).text)
        bodies.append(client.get(url).text)
    for url in ("/settings/dashscope/test", "/settings/openrouter/test", "/settings/dashscope",
                "/settings/openrouter", "/settings/general"):
        bodies.append(client.post(url, data={"chat_provider": "dashscope"}, headers=HX).text)
    client.post("/settings/dashscope", data={"region": "custom", "base_url": fake.dashscope_base,
                                             "api_key": "sk-wrong-" + SECRET_KEY_VALUE[-12:]}, headers=HX)
    bodies.append(client.post("/settings/dashscope/test", headers=HX).text)
    bodies.append(client.get(f"/m/{ask(client, '错的 key').id}").text)
    everything = "\n".join(bodies) + caplog.text
    assert SECRET_KEY_VALUE not in everything
    assert SECRET_KEY_VALUE[:-4] not in everything
    assert SECRET_KEY_VALUE[-12:] not in everything
    assert Message.select().count() >= 4
