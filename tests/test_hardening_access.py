"""Hardening II (issue 13): where a saved key may go, sessions the server can end, "next"
that stays inside Moyan, refusing to start without a crash loop, guesses slowed down
without locking the owner out, and dependencies pinned with hashes."""
import os
import re
import signal
import subprocess
import sys
from urllib.parse import unquote

import pytest
import requests
from playwright.sync_api import expect

from fake_upstream import FakeUpstream
from helpers import (DASHSCOPE_KEY, HX, OPENROUTER_KEY, PASSWORD, ROOT, LiveServer, app_env, ask, login, new_app,
                     save_settings)
from models import Message, Setting
from servers import free_port
from services import access
from services.failures import error_text


def page_token(client):
    return re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/settings").text).group(1)


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


# -- 1. A saved key goes only to the address it was saved with ------------------

NEW_KEY = "sk-fake4444typed5555again6666"


@pytest.fixture
def stranger():
    """Another server, at an address someone typed into the settings: it notes every
    Authorization header it receives."""
    with FakeUpstream() as server:
        yield server


def keys_received(server):
    return [entry["headers"]["Authorization"] for entry in server.requests if entry["authorization"]]


def test_testing_another_address_with_the_key_field_blank_never_sends_the_saved_key(client, fake, stranger):
    save_settings(client, "dashscope", region="custom", base_url=fake.dashscope_base, api_key=NEW_KEY)
    html = client.post("/settings/dashscope/test", data={"region": "custom", "base_url": stranger.dashscope_base},
                       headers=HX).text
    assert "请在「设置」里重新输入 API Key" in html
    assert keys_received(stranger) == []


def test_saving_another_address_without_the_key_is_refused_and_nothing_changes(client, fake, stranger):
    save_settings(client, "dashscope", region="custom", base_url=fake.dashscope_base, api_key=NEW_KEY)
    response = save_settings(client, "dashscope", region="custom", base_url=stranger.dashscope_base)
    assert response.status_code == 422 and "请在这里重新输入 API Key" in response.text
    assert Setting.get_value("dashscope_base_url") == fake.dashscope_base
    assert ask(client, "你好").status == Message.DONE
    assert keys_received(stranger) == []
    assert f"Bearer {NEW_KEY}" in keys_received(fake)


def test_an_environment_key_goes_only_to_the_environment_address(client, stranger):
    for name, base in (("dashscope", stranger.dashscope_base), ("openrouter", stranger.openrouter_base)):
        assert "重新输入" in save_settings(client, name, region="custom", base_url=base).text
        client.post(f"/settings/{name}/test", data={"region": "custom", "base_url": base}, headers=HX)
    assert keys_received(stranger) == []


def test_an_address_saved_before_keys_were_bound_gets_no_key_and_the_answer_says_why(client, stranger):
    # As an older Moyan left it: a custom address saved while the key came from the environment.
    Setting.set_value("dashscope_region", "custom")
    Setting.set_value("dashscope_base_url", stranger.dashscope_base)
    message = ask(client, "你好")
    assert message.status == Message.ERROR and "只会发往保存它时的服务地址" in error_text(message.error)
    assert keys_received(stranger) == []
    assert "这个 Key 不会发往新地址" in client.get("/settings").text


def test_a_key_typed_again_goes_to_the_new_address(client, stranger):
    save_settings(client, "openrouter", base_url=stranger.openrouter_base, api_key=NEW_KEY)
    test = client.post("/settings/openrouter/test", data={"base_url": stranger.openrouter_base}, headers=HX)
    assert "连接成功" in test.text
    assert set(keys_received(stranger)) == {f"Bearer {NEW_KEY}"}
    assert OPENROUTER_KEY not in str(stranger.requests) and DASHSCOPE_KEY not in str(stranger.requests)


def test_the_settings_page_says_a_new_address_needs_the_key_again(client):
    assert "改了地域或服务地址，请同时重新输入 Key" in client.get("/settings").text


@pytest.mark.browser
def test_in_the_page_a_new_address_without_the_key_is_explained_and_gets_no_key(page, live_server, stranger):
    page.goto(live_server.url + "/settings")
    section = page.locator("#settings-openrouter")
    section.get_by_label("API Key").fill(NEW_KEY)
    section.get_by_role("button", name="保存").click()
    expect(section.get_by_role("status").first).to_contain_text("已保存")
    expect(section).to_contain_text("改了地域或服务地址，请同时重新输入 Key")
    section.get_by_label("服务地址（Base URL）").fill(stranger.openrouter_base)
    section.get_by_role("button", name="测试连接").click()
    expect(page.locator("#openrouter-connection")).to_contain_text("请在「设置」里重新输入 API Key")
    section.get_by_role("button", name="保存").click()
    expect(page.locator("#openrouter-api_key-error")).to_contain_text("请在这里重新输入 API Key")
    assert keys_received(stranger) == []


# -- 2. Sessions the server can end ----------------------------------------------

def test_a_copied_session_cookie_stops_working_after_logout(locked_app):
    browser, thief = locked_app.test_client(), locked_app.test_client()
    login(browser)
    name = locked_app.config["SESSION_COOKIE_NAME"]
    thief.set_cookie(name, browser.get_cookie(name).value)
    assert thief.get("/settings").status_code == 200
    browser.post("/logout", headers={**HX, "X-CSRF-Token": page_token(browser)})
    assert browser.get("/settings").status_code == 302
    assert thief.get("/settings").status_code == 302


def test_a_new_password_logs_out_every_other_browser(app, client):
    client.post("/settings/password", data={"password": "first password", "password_again": "first password"},
                headers=HX)
    other = app.test_client()
    assert login(other, "first password").status_code == 302
    assert other.get("/settings").status_code == 200
    response = client.post("/settings/password", data={"password": "second password",
                                                       "password_again": "second password"}, headers=HX)
    assert other.get("/settings").status_code == 302
    assert client.get("/settings").status_code == 200  # whoever changed it stays in
    assert "其他浏览器需要用新密码重新登录" in response.text


def test_a_new_environment_password_ends_the_logins_made_with_the_old_one(fake, tmp_path, monkeypatch):
    before = new_app(monkeypatch, fake, tmp_path / "data", MOYAN_PASSWORD="old password")
    browser = before.test_client()
    login(browser, "old password")
    cookie = browser.get_cookie(before.config["SESSION_COOKIE_NAME"]).value
    after = new_app(monkeypatch, fake, tmp_path / "data", MOYAN_PASSWORD="new password")
    returning = after.test_client()
    returning.set_cookie(after.config["SESSION_COOKIE_NAME"], cookie)
    assert returning.get("/settings").status_code == 302


def test_two_moyans_on_one_host_have_session_cookies_of_their_own(fake, tmp_path, monkeypatch):
    names = []
    for folder in ("first", "second"):
        app = new_app(monkeypatch, fake, tmp_path / folder, MOYAN_PASSWORD=PASSWORD)
        cookie = login(app.test_client()).headers["Set-Cookie"]
        assert cookie.startswith(app.config["SESSION_COOKIE_NAME"] + "=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        names.append(app.config["SESSION_COOKIE_NAME"])
    assert names[0] != names[1] and "session" not in names


# -- 6. "next" stays inside Moyan ---------------------------------------------------

# As they would stand in a link (percent-encoded): each leads off Moyan or cannot be a header.
HOSTILE_NEXT = ["/%09/evil.example", "/%5Cevil.example", "//evil.example", "///evil.example",
                "/%0a", "/%0d%0aSet-Cookie:x=1", "https://evil.example/", "/%252F/evil.example",
                "/%E3%80%80/evil.example", "%20//evil.example", "evil.example"]


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_the_language_switch_only_redirects_back_into_moyan(client, next_url):
    response = client.get("/lang/en?next=" + next_url)
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_login_only_redirects_back_into_moyan(locked_app, next_url):
    client = locked_app.test_client()
    page = client.get("/login?next=" + next_url)
    assert page.status_code == 200 and 'name="next" value="/"' in page.text
    response = login(client, next_url=unquote(next_url))
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_next_inside_moyan_is_kept(client, locked_app):
    assert client.get("/lang/en", query_string={"next": "/c/3?q=%E8%8A%B1"}).headers["Location"] == "/c/3?q=%E8%8A%B1"
    assert login(locked_app.test_client(), next_url="/gallery?model=x").headers["Location"] == "/gallery?model=x"


# -- 7. Refusing to start, once; never becoming open -------------------------------

def gunicorn(env, log):
    env = {**os.environ, **env}
    return subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", "gunicorn.conf.py",
                             "app:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_gunicorn_refuses_a_network_without_a_password_once_and_exits(fake, tmp_path):
    env = {**app_env(fake, tmp_path / "data"), "MOYAN_HOST": "0.0.0.0", "MOYAN_PORT": str(free_port())}
    with open(tmp_path / "server.log", "wb") as log:
        process = gunicorn(env, log)
        try:
            returncode = process.wait(30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    output = (tmp_path / "server.log").read_text(encoding="utf-8")
    assert returncode != 0
    assert output.count("墨言拒绝启动") == 1 and "MOYAN_PASSWORD" in output
    assert "Booting worker" not in output and "Listening at" not in output


def test_gunicorn_serves_a_network_with_a_password_saved_in_the_settings(client, fake, tmp_path, database_url):
    client.post("/settings/password", data={"password": PASSWORD, "password_again": PASSWORD}, headers=HX)
    server = LiveServer({**app_env(fake, tmp_path / "data", database_url), "MOYAN_HOST": "0.0.0.0"},
                        tmp_path / "server.log")
    server.start()
    try:
        response = requests.get(server.url + "/settings", allow_redirects=False, timeout=10)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    finally:
        server.stop()


def test_a_moyan_open_to_the_network_refuses_to_remove_its_password(fake, tmp_path, monkeypatch):
    local = new_app(monkeypatch, fake, tmp_path / "data").test_client()
    local.post("/settings/password", data={"password": PASSWORD, "password_again": PASSWORD},
               headers={**HX, "X-CSRF-Token": page_token(local)})
    networked = new_app(monkeypatch, fake, tmp_path / "data", MOYAN_HOST="0.0.0.0")
    owner = networked.test_client()
    login(owner)
    response = owner.post("/settings/password/delete", headers={**HX, "X-CSRF-Token": page_token(owner)})
    assert response.status_code == 422
    assert "取消密码会让网络上的任何人都能使用它，所以没有取消" in response.text
    assert Setting.get_value("password_hash")
    assert networked.test_client().get("/settings").status_code == 302


# -- 10. Guesses slowed down, the owner never locked out ----------------------------

def test_the_right_password_lets_in_after_many_wrong_guesses_from_the_same_address(locked_app):
    guesser, owner = locked_app.test_client(), locked_app.test_client()
    for _ in range(12):
        assert login(guesser, "guess").status_code == 401
    response = login(owner)
    assert response.status_code == 302
    assert owner.get("/settings").status_code == 200


def test_wrong_guesses_cost_more_and_more_time(locked_app):
    locked_app.config["LOGIN_FAILURE_DELAY"] = 1.0
    with locked_app.app_context():
        delays = [access.failure_delay(failures) for failures in range(1, 12)]
    assert delays == [1, 1, 1, 1, 1, 2, 4, 8, 16, 30, 30]


# -- Dependencies pinned with hashes ----------------------------------------------

LOCKS = {"requirements.lock": ["requirements.txt"],
         "requirements-scale.lock": ["requirements.txt", "requirements-scale.txt"],
         "requirements-dev.lock": ["requirements.txt", "requirements-scale.txt", "requirements-dev.txt"],
         "requirements-bench.lock": ["requirements.txt", "requirements-scale.txt", "requirements-dev.txt",
                                     "requirements-bench.txt"]}


def pins(text):
    """{name: version} of every `name==version` line (extras dropped, names normalised)."""
    found = re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", text, flags=re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_dependency_is_pinned_with_hashes(lock):
    text = read(lock)
    locked = pins(text)
    for source in LOCKS[lock]:
        for name, version in pins(read(source)).items():
            assert locked.get(name) == version, f"{lock}: {name} is not {version}"
    for requirement in re.split(r"\n(?=[A-Za-z0-9])", text):
        if re.match(r"[A-Za-z0-9]", requirement):
            assert "--hash=sha256:" in requirement, requirement.splitlines()[0]
    makefile = read("Makefile")
    assert f"--require-hashes -r {lock}" in makefile

