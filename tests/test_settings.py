"""The settings editor: keys stay secret, models are suggested, mistakes are explained."""
import pytest

from helpers import DASHSCOPE_KEY, HX, save_settings
from models import Setting

NEW_KEY = "sk-fake1111saved2222key3333abcd"


def test_the_page_has_both_providers_with_their_defaults(client):
    page = client.get("/settings").text
    assert "阿里云百炼" in page and "OpenRouter" in page
    assert 'value="qwen-plus"' in page
    assert 'value="wan2.2-t2i-flash"' in page
    assert "https://dashscope-intl.aliyuncs.com" in page


def test_a_saved_key_is_never_sent_back_only_its_last_four_characters(client):
    response = save_settings(client, "dashscope", region="cn", api_key=NEW_KEY, text_model="qwen-max")
    assert response.status_code == 200
    assert "已保存" in response.text
    for html in (response.text, client.get("/settings").text, client.get("/").text):
        assert NEW_KEY not in html
        assert NEW_KEY[:-4] not in html
    assert "abcd" in client.get("/settings").text
    assert Setting.get_value("dashscope_api_key") == NEW_KEY
    assert Setting.get_value("dashscope_text_model") == "qwen-max"


def test_an_environment_key_is_used_until_one_is_saved_and_never_shown(client):
    page = client.get("/settings").text
    assert "环境变量" in page
    assert DASHSCOPE_KEY not in page


def test_an_empty_key_field_keeps_the_saved_key(client):
    save_settings(client, "dashscope", region="cn", api_key=NEW_KEY)
    save_settings(client, "dashscope", region="cn", api_key="", text_model="qwen-max")
    assert Setting.get_value("dashscope_api_key") == NEW_KEY
    assert Setting.get_value("dashscope_text_model") == "qwen-max"


def test_the_saved_key_can_be_removed(client):
    save_settings(client, "openrouter", api_key=NEW_KEY)
    html = client.post("/settings/openrouter/key/delete", headers=HX).text
    assert "已删除" in html
    assert Setting.get_value("openrouter_api_key") is None


@pytest.mark.parametrize("fields, sentence", [
    ({"api_key": "有中文的key12345"}, "可见的英文字符"),
    ({"api_key": "short"}, "8–200"),
    ({"text_model": "qwen plus"}, "模型名称"),
    ({"region": "mars"}, "请选择一个地域"),
    ({"region": "custom", "base_url": "ftp://x"}, "http://"),
    ({"region": "custom", "base_url": "http://[::1"}, "http://"),
    ({"region": "custom", "base_url": "http://example.com:99999"}, "http://"),
    ({"region": "custom", "base_url": "http://:8080/v1"}, "http://"),
    ({"region": "custom", "base_url": "http://exa mple.com"}, "http://"),
])
def test_a_wrong_field_is_explained_next_to_it_and_nothing_is_saved(client, fields, sentence):
    response = save_settings(client, "dashscope", **{"region": "cn", **fields})
    assert response.status_code == 422
    assert sentence in response.text
    assert "没有保存" in response.text
    assert set(Setting.all_values()) == {"secret_key"}


def test_text_with_a_nul_character_is_refused_with_a_sentence_and_nothing_is_saved(client):
    response = save_settings(client, "dashscope", region="custom", base_url="http://example.com/\x00")
    assert response.status_code == 422 and "空字符" in response.text
    assert set(Setting.all_values()) == {"secret_key"}
    response = client.post("/send", data={"text": "你好\x00"}, headers=HX)
    assert response.status_code == 422 and "空字符" in response.text
    assert client.get("/conversations", query_string={"q": "\x00"}).status_code == 422


def test_test_connection_lists_the_models_and_offers_them_as_suggestions(client, fake):
    html = client.post("/settings/dashscope/test", headers=HX).text
    assert "连接成功" in html
    assert "qwen-plus" in html
    assert 'id="dashscope-model-ids" hx-swap-oob=true' in html
    assert fake.requests[-1]["path"] == "/compatible-mode/v1/models"
    assert '<option value="qwq-plus">' in client.get("/settings").text


def test_test_connection_explains_a_wrong_or_foreign_key(client, fake):
    save_settings(client, "dashscope", region="custom", base_url=fake.dashscope_base, api_key="sk-wrong00000key")
    html = client.post("/settings/dashscope/test", headers=HX).text
    assert "API Key 无效" in html and "地域" in html
    assert "sk-wrong" not in html


def test_test_connection_explains_no_network(client):
    save_settings(client, "dashscope", region="custom", base_url="http://127.0.0.1:9", api_key=NEW_KEY)
    assert "无法连接" in client.post("/settings/dashscope/test", headers=HX).text


def test_openrouter_test_checks_the_key_not_just_the_public_model_list(client, fake):
    save_settings(client, "openrouter", api_key="sk-or-v1-wrong-0000")
    html = client.post("/settings/openrouter/test", headers=HX).text
    assert "OpenRouter API Key 无效" in html
    assert fake.requests[-1]["path"].endswith("/key")


def test_the_default_chat_provider_is_saved(client):
    client.post("/settings/general", data={"chat_provider": "openrouter"}, headers=HX)
    assert Setting.get_value("chat_provider") == "openrouter"
    assert 'value="openrouter" selected' in client.get("/").text


def test_every_form_control_has_a_label(client):
    import re
    for url in ("/settings", "/"):
        html = client.get(url).text
        for control in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in control:
                continue
            control_id = re.search(r'\bid="([^"]+)"', control)
            labelled = "aria-label=" in control or (
                control_id and f'for="{control_id.group(1)}"' in html)
            at = html.index(control)
            wrapped = html.rfind("<label", 0, at) > html.rfind("</label>", 0, at)
            assert labelled or wrapped, control


def test_the_key_is_not_logged(client, fake, caplog):
    save_settings(client, "dashscope", region="custom", base_url=fake.dashscope_base, api_key="sk-wrong-secret-1234")
    client.post("/settings/dashscope/test", headers=HX)
    assert "sk-wrong-secret" not in caplog.text


def test_test_connection_uses_what_is_typed_before_saving(client, fake):
    html = client.post("/settings/openrouter/test", headers=HX, data={
        "api_key": "sk-or-v1-wrong-typed-0000", "base_url": fake.openrouter_base}).text
    assert "OpenRouter API Key 无效" in html
    assert Setting.get_value("openrouter_api_key") is None


def test_test_connection_refuses_a_broken_address_without_trying_it(client, fake):
    response = client.post("/settings/openrouter/test", data={"base_url": "http://[::1"}, headers=HX)
    assert response.status_code == 200
    assert "http://" in response.text
    assert not fake.requests
