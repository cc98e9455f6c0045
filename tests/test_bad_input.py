"""Hostile input at every endpoint that takes some (hypothesis): never a server error, and a
refusal (4xx) changes nothing in the database and asks nothing of the providers."""
import os
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import HX, end_generations
from models import MODELS, Conversation, Image, ImageTask, Message
from services.chat import MAX_SYSTEM_PROMPT, MAX_TEXT

BOUNDED = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HOSTILE = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=10),
    st.integers().map(str),
    st.sampled_from([
        "", " ", "\x00", "a\x00b", "\r\n", "\u202e", "\ufeff", "-1", "0", "1", "2", "1.5", "1e309",
        "NaN", "0x10", "١٢", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "9" * 30, "9" * 5000, "../../moyan.db", "..\\..\\moyan.db", "%2e%2e%2f", "/etc/passwd",
        "<script>alert(1)</script>", "' OR 1=1 --", "%", "_", "on", "true", "custom", "cn", "us",
        "dashscope", "openrouter", "qwen-plus", "wan2.2-t2i-flash", "1024*1024", "custom*custom",
        "http://[::1", "http://example.com:99999", "https://example.com/v1",
        "x" * (MAX_TEXT + 1), "中" * (MAX_SYSTEM_PROMPT + 1), "sk-" + "a" * 300,
    ]),
)
# A field sent once, several times, or as the hostile value alone.
VALUES = HOSTILE | st.lists(HOSTILE, min_size=2, max_size=3)
IDS = st.one_of(st.integers(min_value=0, max_value=8), st.integers(min_value=0, max_value=10**30),
                st.sampled_from(["-1", "abc", "1.0", "%00", "..%2f", "1%20"]))


def forms(*fields):
    """Form data with some of `fields` (maybe none) and maybe a stray one."""
    names = st.sampled_from(fields) | st.text(max_size=8) if fields else st.text(max_size=8)
    return st.dictionaries(names, VALUES, max_size=len(fields) + 1)


BODIES = st.one_of(
    st.tuples(st.just("form"), forms()),
    st.tuples(st.just("json"), st.dictionaries(st.text(max_size=8), HOSTILE, max_size=3)),
    st.tuples(st.just("bytes"), st.binary(max_size=200)),
)


def dump():
    return {model.__name__: list(model.select().tuples()) for model in MODELS}


def settings_but_model_lists():
    return [row for row in dump()["Setting"] if not row[0].endswith("_models")]




def path_id(value):
    return quote(str(value), safe="%")


def request(client, fake, method, url, body=None):
    """Send one request and check the properties; return the response."""
    before, calls = dump(), len(fake.requests)
    kind, data = body or ("form", {})
    options = {"json": data} if kind == "json" else {"data": data}
    if kind == "bytes":
        options["content_type"] = "application/x-www-form-urlencoded"
    response = client.open(url, method=method, headers=HX, **options)
    end_generations(client.application)
    assert response.status_code < 500, (method, url, body)
    if 400 <= response.status_code < 500:
        assert dump() == before, (method, url, body, response.status_code)
        assert len(fake.requests) == calls, (method, url, body)
    return response


@pytest.fixture
def rows(app):
    """A conversation with a question and its answer, and a painted picture on disk."""
    app.extensions["painter"].stop()  # only requests may reach the providers here
    conversation = Conversation.create(title="已有对话")
    Message.create(conversation=conversation, role="user", content="你好")
    Message.create(conversation=conversation, role="assistant", content="你好！", model="qwen-plus")
    task = ImageTask.create(model="wan2.2-t2i-flash", prompt="花店", status=ImageTask.SUCCEEDED)
    folder = os.path.join(app.config["DATA_DIR"], "images", "2025", "01")
    os.makedirs(folder)
    with open(os.path.join(folder, "1-0.png"), "wb") as f:
        f.write(b"\x89PNG")
    Image.create(task=task, file="2025/01/1-0.png", thumbnail="2025/01/1-0.png", width=1, height=1,
                 prompt="花店", model=task.model, provider="dashscope")
    yield
    end_generations(app)


FORM_ENDPOINTS = [
    ("/send", ("text", "conversation_id", "provider", "model", "system_prompt", "thinking")),
    ("/images", ("prompt", "negative_prompt", "size", "width", "height", "n", "seed", "provider",
                 "model", "prompt_extend", "watermark")),
    ("/settings/general", ("chat_provider",)),
]


@pytest.mark.parametrize("url, fields", FORM_ENDPOINTS)
def test_form_endpoints_survive_any_form(client, fake, rows, url, fields):
    @BOUNDED
    @given(form=forms(*fields), body=BODIES)
    def run(form, body):
        request(client, fake, "POST", url, ("form", form))
        request(client, fake, "POST", url, body)

    run()


@pytest.mark.parametrize("action, fields", [
    ("title", ("title",)),
    ("options", ("provider", "model", "system_prompt", "thinking")),
])
def test_conversation_endpoints_survive_any_id_and_form(client, fake, rows, action, fields):
    @BOUNDED
    @given(conversation_id=IDS, form=forms(*fields))
    def run(conversation_id, form):
        request(client, fake, "POST", f"/c/{path_id(conversation_id)}/{action}", ("form", form))

    run()


@pytest.mark.parametrize("method, action", [("POST", "edit"), ("GET", "edit"), ("POST", "regenerate"),
                                            ("POST", "stop"), ("GET", "")])
def test_message_endpoints_survive_any_id_and_form(client, fake, rows, method, action):
    @BOUNDED
    @given(message_id=IDS, form=forms("text"))
    def run(message_id, form):
        request(client, fake, method, f"/m/{path_id(message_id)}/{action}".rstrip("/"), ("form", form))

    run()


@pytest.mark.parametrize("name", ["dashscope", "openrouter"])
def test_provider_settings_survive_any_form(client, fake, rows, name):
    @BOUNDED
    @given(provider=st.just(name) | HOSTILE.map(path_id), action=st.sampled_from(["", "/key/delete"]),
           form=forms("api_key", "text_model", "image_model", "region", "base_url"))
    def run(provider, action, form):
        request(client, fake, "POST", f"/settings/{provider}{action}", ("form", form))

    run()


@pytest.mark.parametrize("name", ["dashscope", "openrouter"])
def test_testing_a_connection_survives_any_form_and_never_leaves_this_machine(client, fake, rows, name):
    # Only the fake's address is ever a usable URL here: nothing may reach out elsewhere.
    base_urls = st.sampled_from(["", fake.dashscope_base, fake.openrouter_base, "ftp://x", "http://",
                                 "http://[::1", "http://a:99999", "javascript:alert(1)"])
    @BOUNDED
    @given(form=forms("api_key", "text_model", "image_model"),
           region=st.sampled_from([None, "custom"]) | HOSTILE.filter(lambda v: v not in ("cn", "intl", "us")),
           base_url=base_urls | HOSTILE.filter(lambda v: "://" not in v))
    def run(form, region, base_url):
        form = {**form, "base_url": base_url, **({"region": region} if region is not None else {})}
        before = settings_but_model_lists()
        request(client, fake, "POST", f"/settings/{name}/test", ("form", form))
        assert settings_but_model_lists() == before  # a test saves the model list, nothing else

    run()


@pytest.mark.parametrize("path", ["/conversations", "/gallery", "/images"])
def test_listings_survive_any_query(client, fake, rows, path):
    @BOUNDED
    @given(query=st.dictionaries(st.sampled_from(["q", "model", "before", "from"]), VALUES, max_size=4))
    def run(query):
        before = dump()
        response = client.get(path, query_string=query, headers=HX)
        assert response.status_code < 500
        assert dump() == before

    run()


def test_an_id_too_big_for_the_database_is_not_found_at_every_address(app, client, fake, rows):
    rules = [rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]
    assert len(rules) > 15
    for rule in rules:
        url = re.sub(r"<int:\w+>", "9223372036854775808", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert request(client, fake, method, url).status_code == 404, (method, url)


def test_gallery_pictures_survive_any_id(client, fake, rows):
    @BOUNDED
    @given(image_id=IDS, method=st.sampled_from(["GET", "DELETE"]))
    def run(image_id, method):
        request(client, fake, method, f"/gallery/{path_id(image_id)}")

    run()


def test_files_outside_the_picture_folder_are_never_served(client, rows):
    @BOUNDED
    @given(path=st.lists(st.sampled_from(["..", ".", "", "2025", "01", "1-0.png", "moyan.db", "%2e%2e",
                                          "\x00", "~", "C:", "/etc/passwd"]) | HOSTILE, max_size=5)
           .map("/".join))
    def run(path):
        response = client.get("/files/" + quote(path, safe="/%"))
        assert response.status_code in (200, 404, 308), path
        if response.status_code == 200:
            assert response.data == b"\x89PNG", path  # the only file in the picture folder

    run()
