"""Every upstream fault of the fake, for each provider: the person reads the right
sentence, the partial answer is kept, the conversation goes on, and Moyan keeps
serving meanwhile. docs/RELIABILITY.md shows this table; a test keeps them in step."""
import os
import re

import pytest

from fake_upstream import REPLY
from helpers import DASHSCOPE_KEY, HX, OPENROUTER_KEY, ROOT, answer_id, read_stream, save_settings, send
from models import Message
from services.failures import error_text

GOOD_MODEL = {"dashscope": "qwen-plus", "openrouter": "openai/gpt-4o"}

# fault: {provider: (how to cause it, sentence the person reads, is the partial text kept)}
# "how" is a model name, or key=... / base_url=... for faults of the account or network.
MATRIX = {
    "invalid key": {"dashscope": ("key=sk-wrong-0000-1111", "API Key 无效", False),
                    "openrouter": ("key=sk-or-v1-wrong-0000", "OpenRouter API Key 无效", False)},
    "key from another region": {"dashscope": ("key=sk-wrong-intl-region-key", "与所选地域不匹配", False)},
    "arrears / no credit": {"dashscope": ("key=sk-arrears-0000-1111", "欠费", False),
                            "openrouter": ("key=sk-or-v1-arrears-0000", "openrouter.ai/credits", False)},
    "rate limit, no Retry-After": {"dashscope": ("fault-rate-limit", "请求太频繁", False),
                                   "openrouter": ("or-fault/rate-limit-bare", "请求过多", False)},
    "rate limit with Retry-After": {"dashscope": ("fault-rate-limit-retry-after", "请求太频繁", False),
                                    "openrouter": ("or-fault/rate-limit", "请求过多", False)},
    "quota used up": {"dashscope": ("fault-quota", "额度已用完", False)},
    "model not found": {"dashscope": ("Qwen-Plus", "模型不存在", False),
                        "openrouter": ("openai/gpt-9", "没有这个模型 ID", False)},
    "input too long": {"dashscope": ("fault-too-long", "长度上限", False),
                       "openrouter": ("or-fault/too-long", "长度上限", False)},
    "input moderation": {"dashscope": ("fault-input-moderation", "输入内容未通过安全审核", False),
                         "openrouter": ("or-fault/moderation", "审核", False)},
    "output moderation": {"dashscope": ("fault-output-moderation", "回答内容被安全审核中断", True),
                          "openrouter": ("or-fault/output-moderation", "回答内容被安全审核中断", True)},
    "HTTP 500": {"dashscope": ("fault-500", "服务繁忙", False), "openrouter": ("or-fault/500", "服务繁忙", False)},
    "HTTP 502": {"dashscope": ("fault-502", "服务繁忙", False), "openrouter": ("or-fault/502", "服务繁忙", False)},
    "HTTP 503": {"dashscope": ("fault-503", "服务繁忙", False), "openrouter": ("or-fault/503", "服务繁忙", False)},
    "connection refused": {"dashscope": ("base_url=http://127.0.0.1:9", "无法连接", False),
                           "openrouter": ("base_url=http://127.0.0.1:9", "无法连接", False)},
    "slow first token": {"dashscope": ("fault-slow-first", "", False),
                         "openrouter": ("or-fault/slow-first", "", False)},
    "stall past the read timeout": {"dashscope": ("fault-stall", "请求已超时", True),
                                    "openrouter": ("or-fault/stall", "请求已超时", True)},
    "connection dropped mid-stream": {"dashscope": ("fault-drop", "连接中断", True),
                                      "openrouter": ("or-fault/drop", "连接中断", True)},
    "error chunk mid-stream": {"dashscope": ("fault-output-moderation", "安全审核中断", True),
                               "openrouter": ("or-fault/midstream", "途中出错", True)},
    "malformed SSE line": {"dashscope": ("fault-malformed", "无法识别", True),
                           "openrouter": ("or-fault/malformed", "无法识别", True)},
}
CASES = [(fault, provider, *outcome) for fault, by_provider in MATRIX.items()
         for provider, outcome in by_provider.items()]


def configure(client, fake, provider, how):
    """Point the provider at the fault: its key or base URL, else leave it as it is."""
    base = fake.dashscope_base if provider == "dashscope" else fake.openrouter_base
    fields = {"region": "custom", "base_url": base}
    if how.startswith("key="):
        fields["api_key"] = how[len("key="):]
    elif how.startswith("base_url="):  # a new address needs the key typed again
        fields["base_url"] = how[len("base_url="):]
        fields["api_key"] = DASHSCOPE_KEY if provider == "dashscope" else OPENROUTER_KEY
    save_settings(client, provider, **fields)
    return GOOD_MODEL[provider] if "=" in how else how


@pytest.mark.parametrize("fault, provider, how, sentence, is_partial_kept", CASES,
                         ids=[f"{p}: {f}" for f, p, *_ in CASES])
def test_each_fault_ends_well(client, fake, fault, provider, how, sentence, is_partial_kept):
    model = configure(client, fake, provider, how)
    sent = send(client, "你好", provider=provider, model=model)
    assert client.get("/").status_code == 200  # served while the answer is under way
    assert client.get("/conversations", headers=HX).status_code == 200
    message_id = answer_id(sent)
    stream = read_stream(client, message_id)
    assert "event: done" in stream
    message = Message.get_by_id(message_id)
    if not sentence:  # a slow start is no fault: the whole answer comes
        assert message.status == Message.DONE and message.content == REPLY("你好")
    else:
        assert message.status == Message.ERROR and sentence in error_text(message.error)
        assert sentence in client.get(f"/m/{message_id}").text
        assert bool(message.content) == is_partial_kept
        assert REPLY("你好").startswith(message.content)
    configure(client, fake, provider, "key=" + ("sk-fake-good-0000-1111" if provider == "dashscope"
                                                 else "sk-or-v1-fake-good-0000"))
    follow_up = send(client, "继续", conversation_id=message.conversation_id, provider=provider,
                     model=GOOD_MODEL[provider])
    read_stream(client, answer_id(follow_up))
    assert Message.get_by_id(answer_id(follow_up)).content == REPLY("继续")


def test_the_reliability_document_lists_every_case():
    with open(os.path.join(ROOT, "docs", "RELIABILITY.md"), encoding="utf-8") as f:
        document = f.read()
    for fault, provider, how, sentence, _ in CASES:
        row = re.search(rf"^\| {re.escape(fault)} \|.*$", document, flags=re.M)
        assert row, f"no row for {fault}"
        assert f"`{how}`" in row.group(0) and (not sentence or sentence in row.group(0)), row.group(0)
