"""The chat page against one address served by two worker processes over PostgreSQL and
Redis (MOYAN_WORKERS=2): whichever worker takes the send, the stream or the stop, the
person sees the whole answer, and a stop keeps what was written."""

import pytest
from playwright.sync_api import expect

from browser_helpers import answer, ask, open_chat
from fake_upstream import REPLY
from helpers import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.scaleout]


@pytest.fixture
def workers(scaleout_env, tmp_path):
    server = LiveServer({**scaleout_env, "MOYAN_WORKERS": "2"}, tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


def test_answers_stream_and_stop_in_the_page_with_two_workers(page, workers):
    open_chat(page, workers)
    for number in range(1, 5):  # new connections each time: the two workers share them
        ask(page, f"第{number}个问题")
        expect(answer(page)).to_contain_text(REPLY(f"第{number}个问题").splitlines()[0])
        expect(answer(page)).to_have_attribute("data-status", "done", timeout=15_000)
        expect(answer(page)).to_contain_text("完毕")
    page.get_by_label("模型").fill("qwen-slow")
    ask(page, "请慢慢说")
    expect(answer(page)).to_contain_text("收到：请慢慢说")
    answer(page).get_by_role("button", name="停止").click()
    expect(answer(page)).to_contain_text("已停止生成")
    expect(answer(page)).to_contain_text("收到：请慢慢说")
    page.reload()
    expect(answer(page)).to_contain_text("已停止生成")
    assert "Traceback" not in workers.read_log()
