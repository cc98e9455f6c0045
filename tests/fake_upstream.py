"""A fake DashScope + OpenRouter server on 127.0.0.1 that speaks their wire formats.

    fake = FakeUpstream(chunk_delay=0.01)
    fake.start()              # "http://127.0.0.1:PORT"
    fake.dashscope_base       # the app appends /compatible-mode/v1 and /api/v1
    fake.openrouter_base      # url + "/openrouter/api/v1"
    fake.requests             # [{"method", "path", "query", "headers", "json"}, ...]
    fake.clear(); fake.stop()

Knobs (see /work/shared/PROTOCOLS.md for the real behaviour they copy):

- API key: missing, or containing "wrong" -> 401; containing "arrears" -> DashScope 400
  Arrearage / OpenRouter 402; containing "models-strings" -> DashScope's /models lists
  plain strings instead of objects. OpenRouter's GET /models is public.
- Answers: REPLY(last user message), streamed 3 characters at a time.
- DashScope models: qwen-plus, qwen-max, qwen-turbo, qwen-flash answer normally;
  qwen-slow answers longer, 0.15 s a chunk; qwq-plus always reasons first, qwen3-32b
  unless `enable_thinking` is false (thinking with `stream` false -> 400). qwen3-vl-plus and
  qwen-vl-max see pictures (`image_url` parts); pictures sent to any other model -> 400
  invalid_parameter_error. An answer to a message with pictures starts 看到 N 张图片。
  Faults: fault-rate-limit, fault-rate-limit-once (first call only, per server),
  fault-rate-limit-retry-after (429 limit_requests with `Retry-After: 1`, every call),
  fault-quota, fault-too-long, fault-input-moderation (SSE-framed 400),
  fault-output-moderation, fault-500, fault-502 (HTML), fault-503, fault-drop (socket cut,
  no 0-chunk), fault-stall (30 s silence), fault-slow-first (2 s), fault-malformed,
  fault-no-done, fault-crlf (CRLF, `data:` without space, `: ping`), fault-split (HTTP
  chunks split inside a UTF-8 character), fault-usage-junk (its usage chunk's `usage` is a
  list). Any other model -> 404 model_not_found.
  A title call (its system message asks for a 标题) whose question holds [title-refused]
  gets 400, [title-malformed] a stream of one non-JSON line, [title-list] `content` as a list.
- Wan image editing (image2image): the same as a submit, for wan2.5-i2i-preview only (else
  400 InvalidParameter) with `input.images` 1-3 URLs or data URLs (else 400 InvalidParameter).
- Wan: submit needs `X-DashScope-Async: enable`; a task is PENDING for 0.3 s, RUNNING
  until 1 s, then SUCCEEDED with PNG links under /oss/ that need no key (every log entry
  has `authorization`: True when an Authorization header was sent). `parameters.size` must
  be "W*H" with each side 512-1440 and `n` 1-4 (default 4), else 400 InvalidParameter.
  At most 2 tasks per API key are in progress (started, not ended); a third stays PENDING
  and its clock starts when a slot frees. `fake.tasks[task_id]` holds each task (key,
  parameters, marker, times). `fake.max_in_flight`: the most tasks of one key submitted and
  not yet ended, counted at each submit; `fake.max_concurrent_seen`: the most of one key in
  progress at once (never above 2: the fake enforces it). clear() resets both.
  Markers in `input.prompt` pick a behaviour (constants WAN_*):
    [fail] FAILED (InvalidParameter, HTTP 200); [partial] SUCCEEDED, but the last of the n
    results is InternalError.Timeout without url; [cancel] CANCELED after 0.3 s PENDING;
    [unknown] UNKNOWN from the first poll; [slow] PENDING 2 s, RUNNING until 4 s;
    [expired] its links answer 403 OSS XML "Request has expired."; [flaky-download] each
    link's first GET answers 503; [not-image] its links answer 200 text/html; [huge] its
    links answer a 17 KB PNG that decodes to 12000 x 12000 (a decompression bomb);
    [poll-html] every poll answers 200 with a gateway's HTML page; [poll-no-output] every
    poll answers 200 JSON without `output`; [no-results] SUCCEEDED with an empty `results`.
    Answered 200 but unreadable at submit (the task may or may not exist): [submit-html] an
    HTML page, [submit-no-output] JSON without `output`; [submit-502] a gateway's 502 page
    (the task is created all the same, as behind a gateway that timed out).
    Refused at submit (flat native body): [throttle] 429 Throttling.RateQuota every time,
    [throttle-once] the same 429 for the first submit of each prompt text only, [quota] 429
    Throttling.AllocationQuota, [arrears] 400 Arrearage, [moderation] 400
    DataInspectionFailed, [ip] 400 IPInfringementSuspect.
- OpenRouter models: openai/gpt-4o, qwen/qwen3-32b, deepseek/deepseek-r1 (streams
  `reasoning` first), google/gemini-2.5-flash-image (returns a PNG data URL when asked
  for the image modality). Faults: or-fault/rate-limit, or-fault/moderation,
  or-fault/502, or-fault/503, or-fault/timeout, or-fault/midstream, or-fault/drop,
  or-fault/rate-limit-bare (429 as rate-limit, no Retry-After), or-fault/too-long (400
  context length), or-fault/500, or-fault/output-moderation (4 deltas, then an in-stream 403
  error with native_finish_reason content_filter, no [DONE]), or-fault/content-filter (4
  deltas, finish_reason content_filter, usage, [DONE]), or-fault/stall (4 deltas, 30 s
  silence), or-fault/slow-first (2 s after the processing comments), or-fault/malformed
  (4 deltas, a broken `data:` line, no [DONE]). Without `stream`: output-moderation is a 200
  error choice, content-filter a cut answer, stall waits 30 s and slow-first 2 s before the
  answer, malformed sends a broken JSON body.
  google/gemini-2.5-flash (text). Only openai/gpt-4o and the two Gemini models list "image" in
  `input_modalities` and take pictures; pictures to another model -> 404 "No endpoints found
  that support image input".
  Any other model -> 400 "is not a valid model ID". A last user message containing
  [no-image] gets text only from the image model; [or-moderation] gets the 403 moderation
  error of or-fault/moderation; [or-html] a 200 HTML page (a broken gateway);
  [or-no-choices] a 200 JSON object without `choices`; [or-huge] a PNG data URL that decodes
  to 12000 x 12000.
- Moderation, like the real services, judges everything sent, on both providers and any
  model: [flagged] anywhere in any message (history and system prompt included) refuses the
  request as input moderation (DashScope: SSE-framed 400 data_inspection_failed; OpenRouter:
  403 with moderation metadata). [flag-output] in the last user message gets an answer that
  starts with [flagged] and is cut by output moderation after four deltas (DashScope: the
  in-stream error event; OpenRouter: the in-stream 403 error), so sending that partial
  answer back is refused too. [flagged-bailian] is flagged by DashScope only (the services
  judge differently), so a message refused there can be resent to OpenRouter.
"""
import base64
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

THINKING_TEXT = "让我想一想：用户在打招呼。"
SLOW_TAIL = ("这是一段很长的回答，用来测试停止与重新连接。" * 2)[:40]
PIECE = 3  # characters per streamed delta

SLOW_MODEL = "qwen-slow"
FAULT_RATE_LIMIT = "fault-rate-limit"
FAULT_RATE_LIMIT_ONCE = "fault-rate-limit-once"
FAULT_RATE_LIMIT_RETRY_AFTER = "fault-rate-limit-retry-after"
FAULT_QUOTA = "fault-quota"
FAULT_TOO_LONG = "fault-too-long"
FAULT_INPUT_MODERATION = "fault-input-moderation"
FAULT_OUTPUT_MODERATION = "fault-output-moderation"
FAULT_500 = "fault-500"
FAULT_502 = "fault-502"
FAULT_503 = "fault-503"
FAULT_DROP = "fault-drop"
FAULT_STALL = "fault-stall"
FAULT_SLOW_FIRST = "fault-slow-first"
FAULT_MALFORMED = "fault-malformed"
FAULT_NO_DONE = "fault-no-done"
FAULT_CRLF = "fault-crlf"
FAULT_SPLIT = "fault-split"
FAULT_USAGE_JUNK = "fault-usage-junk"
TITLE_FAULTS = ("[title-refused]", "[title-malformed]", "[title-list]")

DASHSCOPE_FAULTS = [
    FAULT_RATE_LIMIT, FAULT_RATE_LIMIT_ONCE, FAULT_QUOTA, FAULT_TOO_LONG,
    FAULT_INPUT_MODERATION, FAULT_OUTPUT_MODERATION, FAULT_500, FAULT_502, FAULT_503,
    FAULT_DROP, FAULT_STALL, FAULT_SLOW_FIRST, FAULT_MALFORMED, FAULT_NO_DONE,
    FAULT_CRLF, FAULT_SPLIT, FAULT_RATE_LIMIT_RETRY_AFTER, FAULT_USAGE_JUNK,
]
DASHSCOPE_MODELS = [
    "qwen-plus", "qwen-max", "qwen-turbo", "qwen-flash", "qwen3-32b", "qwq-plus",
    SLOW_MODEL, "wan2.2-t2i-flash", "wan2.2-t2i-plus", *DASHSCOPE_FAULTS,
    "qwen3-vl-plus", "qwen-vl-max",
]
DASHSCOPE_SEEING_MODELS = {"qwen3-vl-plus", "qwen-vl-max"}
# What DashScope answers pictures sent to a model that cannot see them (wording unconfirmed).
NO_PICTURES_MESSAGE = "<400> InternalError.Algo.InvalidParameter: The model does not support image input."
# These stream four content deltas and then misbehave.
DASHSCOPE_CUT_SHORT = {FAULT_OUTPUT_MODERATION, FAULT_DROP, FAULT_STALL, FAULT_MALFORMED}

OR_FAULT_RATE_LIMIT = "or-fault/rate-limit"
OR_FAULT_MODERATION = "or-fault/moderation"
OR_FAULT_502 = "or-fault/502"
OR_FAULT_503 = "or-fault/503"
OR_FAULT_TIMEOUT = "or-fault/timeout"
OR_FAULT_MIDSTREAM = "or-fault/midstream"
OR_FAULT_DROP = "or-fault/drop"
OR_FAULT_RATE_LIMIT_BARE = "or-fault/rate-limit-bare"
OR_FAULT_TOO_LONG = "or-fault/too-long"
OR_FAULT_OUTPUT_MODERATION = "or-fault/output-moderation"
OR_FAULT_CONTENT_FILTER = "or-fault/content-filter"
OR_FAULT_500 = "or-fault/500"
OR_FAULT_STALL = "or-fault/stall"
OR_FAULT_SLOW_FIRST = "or-fault/slow-first"
OR_FAULT_MALFORMED = "or-fault/malformed"
OR_REASONING_MODEL = "deepseek/deepseek-r1"
OR_IMAGE_MODEL = "google/gemini-2.5-flash-image"
OR_VISION_MODEL = "google/gemini-2.5-flash"
# Models whose input_modalities include "image"; the others refuse pictures (404).
OPENROUTER_SEEING_MODELS = {"openai/gpt-4o", OR_IMAGE_MODEL, OR_VISION_MODEL}

# id -> (provider name, output modalities)
OPENROUTER_MODELS = {
    "openai/gpt-4o": ("OpenAI", ["text"]),
    "qwen/qwen3-32b": ("Alibaba", ["text"]),
    OR_REASONING_MODEL: ("DeepSeek", ["text"]),
    OR_IMAGE_MODEL: ("Google", ["image", "text"]),
    OR_VISION_MODEL: ("Google", ["text"]),
    **{m: ("Alibaba", ["text"]) for m in (
        OR_FAULT_RATE_LIMIT, OR_FAULT_MODERATION, OR_FAULT_502, OR_FAULT_503,
        OR_FAULT_TIMEOUT, OR_FAULT_MIDSTREAM, OR_FAULT_DROP, OR_FAULT_RATE_LIMIT_BARE,
        OR_FAULT_TOO_LONG, OR_FAULT_OUTPUT_MODERATION, OR_FAULT_CONTENT_FILTER, OR_FAULT_500,
        OR_FAULT_STALL, OR_FAULT_SLOW_FIRST, OR_FAULT_MALFORMED)},
}
# These stream four content deltas and then misbehave.
OPENROUTER_CUT_SHORT = {OR_FAULT_MIDSTREAM, OR_FAULT_DROP, OR_FAULT_OUTPUT_MODERATION,
                        OR_FAULT_STALL, OR_FAULT_MALFORMED}
OR_TOO_LONG_MESSAGE = (
    "This endpoint's maximum context length is 131072 tokens. However, you requested about "
    "200000 tokens (200000 of text input). Please reduce the length of either one, or use the "
    "\"middle-out\" transform to compress your prompt automatically.")

# Wan markers, found anywhere in `input.prompt`
BENCH_MODEL = re.compile(r"bench-stamp-(\d{1,4})")
BENCH_DEFAULT_CHUNKS, BENCH_MAX_CHUNKS = 200, 5000

WAN_FAIL = "[fail]"
WAN_PARTIAL = "[partial]"
WAN_CANCEL = "[cancel]"
WAN_UNKNOWN = "[unknown]"
WAN_EXPIRED = "[expired]"
WAN_FLAKY_DOWNLOAD = "[flaky-download]"
WAN_NOT_IMAGE = "[not-image]"
WAN_SLOW = "[slow]"
WAN_MODERATION = "[moderation]"
WAN_IP = "[ip]"
WAN_THROTTLE = "[throttle]"
WAN_THROTTLE_ONCE = "[throttle-once]"
WAN_ARREARS = "[arrears]"
WAN_QUOTA = "[quota]"
WAN_HUGE = "[huge]"
WAN_POLL_HTML = "[poll-html]"
WAN_POLL_NO_OUTPUT = "[poll-no-output]"
WAN_NO_RESULTS = "[no-results]"
WAN_SUBMIT_HTML = "[submit-html]"
WAN_SUBMIT_502 = "[submit-502]"
WAN_SUBMIT_NO_OUTPUT = "[submit-no-output]"
GATEWAY_HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
# A task's `marker` is the first of these in its prompt ([slow] also combines with the others).
WAN_TASK_MARKERS = [WAN_FAIL, WAN_PARTIAL, WAN_CANCEL, WAN_UNKNOWN, WAN_EXPIRED,
                    WAN_FLAKY_DOWNLOAD, WAN_NOT_IMAGE, WAN_HUGE, WAN_POLL_HTML, WAN_POLL_NO_OUTPUT,
                    WAN_NO_RESULTS, WAN_SLOW]
WAN_RATE_LIMITED = (429, "Throttling.RateQuota",
                    "Requests rate limit exceeded, please try again later.")
# marker -> (status, code, message) of a refused submit. Account refusals come before the
# parameter checks, content refusals after them.
WAN_ACCOUNT_REFUSALS = {
    WAN_THROTTLE: WAN_RATE_LIMITED,
    WAN_QUOTA: (429, "Throttling.AllocationQuota", "Free allocated quota exceeded."),
    WAN_ARREARS: (400, "Arrearage",
                  "Access denied, please make sure your account is in good standing."),
}
WAN_CONTENT_REFUSALS = {
    WAN_MODERATION: (400, "DataInspectionFailed", "Input data may contain inappropriate content."),
    WAN_IP: (400, "IPInfringementSuspect",
             "Input data is suspected of being involved in IP infringement."),
}
WAN_FAILED_MESSAGE = "The size is not match the allowed size."
WAN_RESULT_TIMEOUT = {"code": "InternalError.Timeout",
                      "message": "An internal error has occured during execution, please try "
                                 "again later or contact service support."}
WAN_MAX_CONCURRENT = 2  # tasks in progress per API key
WAN_EDIT_MODELS = {"wan2.5-i2i-preview"}
WAN_TIMES = (0.3, 1.0)  # seconds after a task's start: PENDING until, RUNNING until
WAN_SLOW_TIMES = (2.0, 4.0)
WAN_CANCEL_AFTER = 0.3  # PENDING this long, then CANCELED
OSS_HOST_ID = "dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com"
OSS_EXPIRED_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>AccessDenied</Code>
  <Message>Request has expired.</Message>
  <RequestId>{request_id}</RequestId>
  <HostId>{host_id}</HostId>
  <Expires>2025-01-09T16:04:10.000Z</Expires>
  <ServerTime>2025-01-10T16:05:00.000Z</ServerTime>
</Error>"""

FLAGGED = "[flagged]"
FLAG_OUTPUT = "[flag-output]"
FLAGGED_BAILIAN = "[flagged-bailian]"
OR_NO_IMAGE = "[no-image]"
OR_MODERATION = "[or-moderation]"
OR_HTML = "[or-html]"
OR_NO_CHOICES = "[or-no-choices]"
OR_HUGE = "[or-huge]"

OR_PREFIX = "/openrouter/api/v1"
DASHSCOPE_SSE = "text/event-stream; charset=utf-8"
OPENROUTER_SSE = "text/event-stream"
ARREARS_MESSAGE = "Access denied, please make sure your account is in good standing."
RATE_LIMITED = ("limit_requests", "limit_requests",
                "Requests rate limit exceeded, please try again later.")
# model -> (status, code, type, message) of a DashScope compatible-mode error
DASHSCOPE_ERRORS = {
    FAULT_RATE_LIMIT: (429, *RATE_LIMITED),
    FAULT_QUOTA: (429, "insufficient_quota", "insufficient_quota",
                  "You exceeded your current quota, please check your plan and billing details."),
    FAULT_TOO_LONG: (400, "invalid_parameter_error", "invalid_request_error",
                     "Range of input length should be [1, 129024]"),
    FAULT_500: (500, "internal_error", "internal_error",
                "An internal error has occured, please try again later or contact service support."),
}


def REPLY(last):
    return f"收到：{last}。\n\n下面是一段代码：\n\n```python\nprint(\"你好\")\n```\n\n完毕。"


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def new_request_id():
    return str(uuid.uuid4())


def pieces(text):
    return [text[i:i + PIECE] for i in range(0, len(text), PIECE)]


def message_text(message):
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # multimodal parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def picture_count(message):
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return 0
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url"
               and str((p.get("image_url") or {}).get("url", "")).startswith(("data:image/", "http")))


def has_pictures(body):
    return any(picture_count(m) for m in body.get("messages") or [])


def picture_note(body):
    """What an answer says first about the pictures of the last user message, if any."""
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    count = picture_count(users[-1]) if users else 0
    return f"看到 {count} 张图片。" if count else ""


def last_user_message(body):
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return message_text(users[-1]) if users else ""


def is_flagged(body, phrases=(FLAGGED,)):
    """Input moderation's verdict on the whole request, as the real services judge it."""
    return any(phrase in message_text(m) for m in body.get("messages") or [] for phrase in phrases)


def is_output_flagged(body):
    return FLAG_OUTPUT in last_user_message(body) and not is_title_call(body)


def reply_to(last):
    return FLAGGED + REPLY(last) if FLAG_OUTPUT in last else REPLY(last)


def usage_for(body, reply):
    prompt = sum(len(message_text(m)) for m in body.get("messages") or [])
    return {"prompt_tokens": prompt, "completion_tokens": len(reply),
            "total_tokens": prompt + len(reply)}


def utf8_split_offset(data):
    """An offset inside the first multi-byte UTF-8 character, or the middle."""
    lead = next((i for i, b in enumerate(data) if b >= 0xC0), None)
    return len(data) // 2 if lead is None else lead + 1


def make_png(width=64, height=64, rgb=(0x3B, 0x82, 0xF6)):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = (b"\x00" + bytes(rgb) * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = make_png()


def make_bomb_png(width=12000, height=12000):
    """A small PNG (one bit per pixel, all zero, deflated) that decodes to width x height."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


_bomb = []


def bomb_png():
    """The decompression bomb, made once (about 60 ms) when first asked for."""
    if not _bomb:
        _bomb.append(make_bomb_png())
    return _bomb[0]


# -- DashScope payloads --------------------------------------------------------

def compat_error(code, type_, message):
    return {"error": {"message": message, "type": type_, "param": None, "code": code},
            "request_id": new_request_id()}


def native_error(code, message):
    return {"code": code, "message": message, "request_id": new_request_id()}


def dashscope_reply(model, last, note=""):
    return note + (reply_to(last) + SLOW_TAIL if model == SLOW_MODEL else reply_to(last))


def dashscope_thinks(body, model):
    if model == "qwq-plus":
        return True
    return model == "qwen3-32b" and body.get("enable_thinking") is not False


def dashscope_events(body, model):
    """The stream's payloads in order: dicts, then "[DONE]" (unless fault-no-done)."""
    reply = dashscope_reply(model, last_user_message(body), picture_note(body))
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(choices, usage=None):
        return {"choices": choices, "object": "chat.completion.chunk", "usage": usage,
                "created": created, "system_fingerprint": None, "model": model, "id": cid}

    def delta(fields, finish=None):
        return chunk([{"delta": fields, "finish_reason": finish, "index": 0, "logprobs": None}])

    if dashscope_thinks(body, model):
        events = [delta({"content": None, "role": "assistant", "reasoning_content": ""})]
        events += [delta({"content": None, "reasoning_content": p}) for p in pieces(THINKING_TEXT)]
    else:
        events = [delta({"content": "", "role": "assistant"})]
    events += [delta({"content": p}) for p in pieces(reply)]
    events.append(delta({"content": ""}, "stop"))
    if model == FAULT_NO_DONE:
        return events
    if (body.get("stream_options") or {}).get("include_usage") is True:
        events.append(chunk([], [1, 2] if model == FAULT_USAGE_JUNK else usage_for(body, reply)))
    return events + ["[DONE]"]


def is_title_call(body):
    """Moyan's call for a conversation's title: its system message asks for a 标题."""
    return "标题" in str(((body.get("messages") or [{}])[0]).get("content", ""))


def bench_chunk_count(body):
    found = re.search(r"\d+", last_user_message(body))
    return min(int(found.group()) if found else BENCH_DEFAULT_CHUNKS, BENCH_MAX_CHUNKS)


def stamp():
    return f"⟨{time.time():.6f}⟩"


def dashscope_completion(body, model):
    reply = dashscope_reply(model, last_user_message(body), picture_note(body))
    usage = {**usage_for(body, reply), "prompt_tokens_details": {"cached_tokens": 0}}
    return {"choices": [{"message": {"role": "assistant", "content": reply},
                         "finish_reason": "stop", "index": 0, "logprobs": None}],
            "object": "chat.completion", "usage": usage, "created": int(time.time()),
            "system_fingerprint": None, "model": model,
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}"}


def wan_task_view(task, base_url, now=None):
    """The poll answer for a task, by how long ago its slot started (see FakeUpstream.add_task)."""
    now = time.monotonic() if now is None else now
    body = {"request_id": new_request_id()}
    if task["marker"] == WAN_UNKNOWN:  # as if the record had expired
        body["output"] = {"task_id": task["id"], "task_status": "UNKNOWN"}
        return body
    output = body["output"] = {"task_id": task["id"], "submit_time": task["submit_time"]}
    if now < task["started"] + task["pending"]:  # waiting for a slot, or queued in it
        output["task_status"] = "PENDING"
        return body
    if task["marker"] == WAN_CANCEL:
        output.update(task_status="CANCELED", end_time=task_time(task, task["ends"]))
        return body
    output["scheduled_time"] = task_time(task, task["started"])
    if now < task["ends"]:
        output.update(task_status="RUNNING",
                      task_metrics={"TOTAL": task["n"], "SUCCEEDED": 0, "FAILED": 0})
        return body
    if task["marker"] == WAN_FAIL:
        body["output"] = {"task_id": task["id"], "task_status": "FAILED",
                          "code": "InvalidParameter", "message": WAN_FAILED_MESSAGE,
                          "task_metrics": {"TOTAL": task["n"], "SUCCEEDED": 0, "FAILED": task["n"]}}
        return body
    expires = int(time.time()) + 86400
    results = []
    for i in range(task["n"]):
        result = {"orig_prompt": task["prompt"]}
        if task["prompt_extend"]:
            result["actual_prompt"] = task["prompt"] + "，高清写实摄影。"
        result["url"] = (f"{base_url}/oss/{task['id']}/{i}.png"
                         f"?Expires={expires}&OSSAccessKeyId=fake&Signature=fake")
        results.append(result)
    failed = 1 if task["marker"] == WAN_PARTIAL else 0
    if failed:
        results[-1] = dict(WAN_RESULT_TIMEOUT)
    if task["marker"] == WAN_NO_RESULTS:
        results = []
    output.update(task_status="SUCCEEDED", end_time=task_time(task, task["ends"]),
                  results=results,
                  task_metrics={"TOTAL": task["n"], "SUCCEEDED": task["n"] - failed,
                                "FAILED": failed})
    body["usage"] = {"image_count": task["n"] - failed}
    return body


def task_time(task, moment):
    """The local-time string of a monotonic `moment` in a task's life."""
    return local_time(task["wall"] + moment - task["submitted"])


def local_time(now=None):
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


def wan_marker(prompt):
    return next((m for m in WAN_TASK_MARKERS if m in prompt), None)


def wan_parameter_error(parameters):
    """The message of a 400 InvalidParameter for bad `size` or `n`, else None."""
    size = parameters.get("size", "1024*1024")
    match = re.fullmatch(r"(\d+)\*(\d+)", size) if isinstance(size, str) else None
    if not match or not all(512 <= int(side) <= 1440 for side in match.groups()):
        return WAN_FAILED_MESSAGE
    n = parameters.get("n", 4)
    if isinstance(n, bool) or not isinstance(n, (int, str)) or not str(n).isdigit() \
            or not 1 <= int(n) <= 4:
        return "The n must be in [1, 4]."
    return None


# -- OpenRouter payloads -------------------------------------------------------

def openrouter_model(model_id):
    provider, outputs = OPENROUTER_MODELS[model_id]
    parameters = ["max_tokens", "temperature", "top_p", "stop", "seed"]
    if model_id == OR_REASONING_MODEL:
        parameters += ["reasoning", "include_reasoning"]
    return {
        "id": model_id, "name": f"{provider}: {model_id.split('/', 1)[1]}",
        "created": 1741818122, "description": f"Fake {model_id} for tests.",
        "architecture": {"input_modalities": ["text", "image"] if model_id in OPENROUTER_SEEING_MODELS else ["text"],
                         "output_modalities": outputs,
                         "tokenizer": "Other", "instruct_type": None},
        "top_provider": {"is_moderated": provider == "OpenAI", "context_length": 128000,
                         "max_completion_tokens": 16384},
        "pricing": {"prompt": "0.0000007", "completion": "0.0000007", "image": "0",
                    "request": "0", "web_search": "0", "internal_reasoning": "0",
                    "input_cache_read": "0", "input_cache_write": "0"},
        "canonical_slug": model_id, "context_length": 128000, "hugging_face_id": "",
        "per_request_limits": {}, "supported_parameters": parameters,
    }


def openrouter_model_list(output_modalities):
    """Models whose outputs include a requested modality ("text" by default, or "all")."""
    wanted = set((output_modalities or "text").split(","))
    return [openrouter_model(m) for m, (_, outputs) in OPENROUTER_MODELS.items()
            if "all" in wanted or wanted & set(outputs)]


def openrouter_fault(model, last):
    """(status, body, headers) for the models that fail before any output, else None."""
    if OR_MODERATION in last:
        model = OR_FAULT_MODERATION
    def error(code, message, **metadata):
        body = {"code": code, "message": message}
        if metadata:
            body["metadata"] = metadata
        return {"error": body}
    rate_limited = error(429, "Rate limit exceeded: free-models-per-min.", headers={
        "X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1735000000000"})
    faults = {
        OR_FAULT_RATE_LIMIT: (429, rate_limited, {"Retry-After": "2"}),
        OR_FAULT_RATE_LIMIT_BARE: (429, rate_limited, {}),
        OR_FAULT_TOO_LONG: (400, error(400, OR_TOO_LONG_MESSAGE, provider_name="Alibaba"), {}),
        OR_FAULT_500: (500, error(500, "Internal Server Error"), {}),
        OR_FAULT_MODERATION: (403, error(403, "Input flagged by moderation", reasons=["harassment"],
                                         flagged_input=last[:100], provider_name="OpenAI",
                                         model_slug="openai/gpt-4o"), {}),
        OR_FAULT_502: (502, error(502, "Provider returned error"), {}),
        OR_FAULT_503: (503, error(503, "No allowed providers are available for the selected model."),
                       {"Retry-After": "1"}),
        OR_FAULT_TIMEOUT: (408, error(408, "Request timed out"), {}),
    }
    return faults.get(model)


def wants_image(body, model):
    return (model == OR_IMAGE_MODEL and "image" in (body.get("modalities") or [])
            and OR_NO_IMAGE not in last_user_message(body))


def png_data_url(png=None):
    return "data:image/png;base64," + base64.b64encode(png or PNG).decode()


class OpenRouterAnswer:
    """One generation's id, text and chunk shape."""

    def __init__(self, body, model):
        self.body, self.model = body, model
        self.id, self.created = f"gen-{int(time.time())}-{uuid.uuid4().hex[:12]}", int(time.time())
        self.provider = OPENROUTER_MODELS[model][0]
        self.reply = picture_note(body) + reply_to(last_user_message(body))
        if model == OR_FAULT_CONTENT_FILTER:  # the provider cut it after four deltas
            self.reply = self.reply[:4 * PIECE]
        self.finish = "content_filter" if model == OR_FAULT_CONTENT_FILTER else "stop"

    def chunk(self, delta, finish=None, **extra):
        return {"id": self.id, "provider": self.provider, "model": self.model,
                "object": "chat.completion.chunk", "created": self.created,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", **delta},
                             "finish_reason": finish, "native_finish_reason": finish,
                             "logprobs": None}],
                "system_fingerprint": None, **extra}

    def usage(self):
        return {**usage_for(self.body, self.reply), "cost": 0.00012}

    def events(self):
        events = [self.chunk({})]
        if self.model == OR_REASONING_MODEL:
            events += [self.chunk({"reasoning": p, "reasoning_details": [
                {"type": "reasoning.text", "text": p, "format": "unknown", "index": 0}]})
                for p in pieces(THINKING_TEXT)]
        events += [self.chunk({"content": p}) for p in pieces(self.reply)]
        if wants_image(self.body, self.model):
            events.append(self.chunk({"images": [{"type": "image_url", "index": 0,
                                                  "image_url": {"url": png_data_url()}}]}))
        events.append(self.chunk({}, self.finish))
        events.append(self.chunk({}, usage=self.usage()))
        return events + ["[DONE]"]

    def midstream_error(self):
        error, native = {"code": 502, "message": "Provider disconnected unexpectedly"}, "error"
        if self.model == OR_FAULT_OUTPUT_MODERATION:
            error = {"code": 403, "message": "Output flagged by moderation",
                     "metadata": {"reasons": ["violence"]}}
            native = "content_filter"
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "provider": self.provider, "error": error,
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                             "native_finish_reason": native}]}

    def completion(self):
        message = {"role": "assistant", "content": self.reply, "refusal": ""}
        choice = {"message": message, "logprobs": {}, "finish_reason": self.finish, "index": 0}
        if self.model == OR_REASONING_MODEL:
            message["reasoning"] = THINKING_TEXT
        if wants_image(self.body, self.model):
            png = bomb_png() if OR_HUGE in last_user_message(self.body) else PNG
            message["images"] = [{"type": "image_url", "image_url": {"url": png_data_url(png)}}]
        if self.model in (OR_FAULT_MIDSTREAM, OR_FAULT_OUTPUT_MODERATION):
            # non-stream errors come as a 200 with an error choice
            message["content"] = self.reply[:4 * PIECE]
            choice.update(finish_reason="error", error=self.midstream_error()["error"])
        return {"id": self.id, "choices": [choice], "provider": self.provider, "model": self.model,
                "object": "chat.completion", "created": self.created, "system_fingerprint": {},
                "usage": self.usage()}


# -- HTTP ----------------------------------------------------------------------

ROUTES = [
    ("GET", r"/compatible-mode/v1/models", "dashscope_models"),
    ("POST", r"/compatible-mode/v1/chat/completions", "dashscope_chat"),
    ("POST", r"/api/v1/chat/completions", "not_found"),
    ("POST", r"/api/v1/services/aigc/text2image/image-synthesis", "wan_submit"),
    ("POST", r"/api/v1/services/aigc/image2image/image-synthesis", "wan_edit_submit"),
    ("GET", r"/api/v1/tasks/(?P<task_id>[^/]+)", "wan_task"),
    ("GET", r"/oss/(?P<task_id>[^/]+)/(?P<index>\d+)\.png", "oss_image"),
    ("GET", OR_PREFIX + r"/models", "openrouter_models"),
    ("GET", OR_PREFIX + r"/key", "openrouter_key"),
    ("POST", OR_PREFIX + r"/chat/completions", "openrouter_chat"),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048  # benchmarks open hundreds of streams at once

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away: normal for Stop and timeouts
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeUpstream/1.0"

    def log_message(self, format, *args):
        pass  # keep test output clean

    @property
    def fake(self):
        return self.server.fake

    def setup(self):
        super().setup()
        self.fake.track(self.connection)

    def finish(self):
        self.fake.untrack(self.connection)
        super().finish()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.body = self.read_json()
        self.fake.record({"method": self.command, "path": url.path, "query": url.query,
                          "headers": dict(self.headers.items()), "json": self.body,
                          "authorization": "Authorization" in self.headers})
        for method, pattern, name in ROUTES:
            match = re.fullmatch(pattern, url.path)
            if method == self.command and match:
                return getattr(self, name)(**match.groupdict())
        self.not_found()

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    # -- writing ---------------------------------------------------------------

    def send_body(self, status, data, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, obj, headers=None):
        self.send_body(status, dumps(obj).encode(), "application/json", headers)

    def not_found(self):
        self.send_body(404, b"", "text/plain")

    def start_stream(self, content_type, headers=None):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def send_chunk(self, data):
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop_connection(self):
        """Cut the socket mid-stream, without the terminating 0-chunk."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def pause(self, seconds):
        """Sleep; False when the server is stopping and the stream should give up."""
        return not self.fake.stopping.wait(seconds)

    def short_stream(self, events, model):
        self.start_stream(DASHSCOPE_SSE)
        self.send_events(events, self.send_dashscope_event(model), 0)
        self.end_stream()

    def send_events(self, events, send, delay):
        for i, event in enumerate(events):
            if i and not self.pause(delay):
                return False
            send(event)
        return True

    # -- auth ------------------------------------------------------------------

    def bearer_key(self):
        auth = self.headers.get("Authorization", "")
        return auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else ""

    def key_fault(self):
        """None, "missing", "wrong" or "arrears", from the bearer key."""
        key = self.bearer_key()
        if not key:
            return "missing"
        if "wrong" in key:
            return "wrong"
        return "arrears" if "arrears" in key else None

    def compat_key_ok(self):
        fault = self.key_fault()
        if fault in ("missing", "wrong"):
            self.send_json(401, compat_error("invalid_api_key", "invalid_request_error",
                                             "Incorrect API key provided. "))
        elif fault == "arrears":
            self.send_json(400, compat_error("Arrearage", "Arrearage", ARREARS_MESSAGE))
        return fault is None

    def native_key_ok(self):
        fault = self.key_fault()
        if fault == "missing":
            self.send_json(401, native_error("InvalidApiKey", "No API-key provided."))
        elif fault == "wrong":
            self.send_json(401, native_error("InvalidApiKey", "Invalid API-key provided."))
        elif fault == "arrears":
            self.send_json(400, native_error("Arrearage", ARREARS_MESSAGE))
        return fault is None

    def openrouter_key_ok(self):
        fault = self.key_fault()
        if fault == "missing":
            self.send_json(401, {"error": {"message": "No cookie auth credentials found", "code": 401}})
        elif fault == "wrong":
            self.send_json(401, {"error": {"message": "User not found.", "code": 401}})
        elif fault == "arrears":
            self.send_json(402, {"error": {
                "code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/credits",
                "metadata": {"limit_source": "account"}}})
        return fault is None

    # -- DashScope -------------------------------------------------------------

    def dashscope_models(self):
        if not self.compat_key_ok():
            return
        if "models-strings" in self.bearer_key():  # a list of names instead of objects
            return self.send_json(200, {"object": "list", "data": DASHSCOPE_MODELS})
        self.send_json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "system"}
            for m in DASHSCOPE_MODELS]})

    def dashscope_chat(self):
        if not self.compat_key_ok():
            return
        body = self.body if isinstance(self.body, dict) else {}
        model = body.get("model")
        stream = body.get("stream") is True
        bench = BENCH_MODEL.fullmatch(model or "")
        if bench and stream:
            if is_title_call(body):  # a title is a few tokens, sent at once
                return self.short_stream(dashscope_events(body, "qwen-plus")[:4] + ["[DONE]"], model)
            return self.bench_stream(body, model, max(1, int(bench.group(1))))
        if model not in DASHSCOPE_MODELS:
            return self.send_json(404, compat_error(
                "model_not_found", "invalid_request_error",
                f"The model `{model}` does not exist or you do not have access to it."))
        if not stream and (body.get("enable_thinking") is True or dashscope_thinks(body, model)):
            return self.send_json(400, {"error": {
                "code": "invalid_parameter_error",
                "message": "parameter.enable_thinking must be set to false for non-streaming calls",
                "param": None, "type": "invalid_request_error"}, "request_id": new_request_id()})
        if is_flagged(body, (FLAGGED, FLAGGED_BAILIAN)):
            return self.input_moderation(stream)
        if is_output_flagged(body):
            model = FAULT_OUTPUT_MODERATION
        if has_pictures(body) and model not in DASHSCOPE_SEEING_MODELS:
            return self.send_json(400, compat_error("invalid_parameter_error", "invalid_request_error",
                                                    NO_PICTURES_MESSAGE))
        if self.dashscope_fault(model, stream) or self.title_fault(body):
            return
        if model == FAULT_SLOW_FIRST and not self.pause(2):
            return
        if stream:
            self.dashscope_stream(body, model)
        else:
            self.send_json(200, dashscope_completion(body, model))

    def title_fault(self, body):
        """A title call's fault (TITLE_FAULTS in the question); True if answered."""
        fault = next((f for f in TITLE_FAULTS if f in last_user_message(body)), None)
        if not is_title_call(body) or fault is None:
            return False
        if fault == "[title-refused]":
            self.send_json(400, compat_error("invalid_parameter_error", "invalid_request_error",
                                             "The title call is refused."))
            return True
        self.start_stream(DASHSCOPE_SSE)
        if fault == "[title-malformed]":
            self.send_chunk(b"data: <html>Bad Gateway</html>\n\n")
        else:
            content = [{"type": "text", "text": "标题"}]
            self.send_chunk(b"data: %s\n\n" % dumps({"choices": [{"delta": {"content": content},
                                                                     "finish_reason": "stop", "index": 0}]}).encode())
            self.send_chunk(b"data: [DONE]\n\n")
        self.end_stream()
        return True

    def dashscope_fault(self, model, stream):
        """Answer the faults that fail before any output; True if answered."""
        if model == FAULT_RATE_LIMIT_ONCE:
            if self.fake.count_call(model) > 1:
                return False
            self.send_json(429, compat_error(*RATE_LIMITED), {"Retry-After": "1"})
        elif model == FAULT_RATE_LIMIT_RETRY_AFTER:
            self.send_json(429, compat_error(*RATE_LIMITED), {"Retry-After": "1"})
        elif model in DASHSCOPE_ERRORS:
            status, *error = DASHSCOPE_ERRORS[model]
            self.send_json(status, compat_error(*error))
        elif model == FAULT_502:
            self.send_body(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif model == FAULT_503:
            self.send_json(503, {"error": {"message": "Service is too busy, please try again later.",
                                           "type": "ServiceUnavailable", "param": None,
                                           "code": "ServiceUnavailable"}})
        elif model == FAULT_INPUT_MODERATION:
            self.input_moderation(stream)
        elif model == FAULT_OUTPUT_MODERATION and not stream:
            self.send_json(400, compat_error("data_inspection_failed", "data_inspection_failed",
                                             "Output data may contain inappropriate content."))
        else:
            return False
        return True

    def input_moderation(self, stream):
        message = "Input data may contain inappropriate content."
        if not stream:
            return self.send_json(400, compat_error("data_inspection_failed",
                                                    "data_inspection_failed", message))
        event = {"error": {"code": "data_inspection_failed", "message": message,
                           "type": "data_inspection_failed",
                           "id": f"chatcmpl-{uuid.uuid4().hex[:24]}"}}
        self.send_body(400, f"data: {dumps(event)}\n\n".encode(), DASHSCOPE_SSE)

    def send_dashscope_event(self, model):
        def send(payload):
            text = payload if isinstance(payload, str) else dumps(payload)
            if model == FAULT_CRLF:
                return self.send_chunk(f": ping\r\n\r\ndata:{text}\r\n\r\n".encode())
            data = f"data: {text}\n\n".encode()
            if model != FAULT_SPLIT:
                return self.send_chunk(data)
            cut = utf8_split_offset(data)
            self.send_chunk(data[:cut])
            time.sleep(0.005)
            self.send_chunk(data[cut:])
        return send

    def dashscope_stream(self, body, model):
        events = dashscope_events(body, model)
        delay = 0.15 if model == SLOW_MODEL else self.fake.chunk_delay
        send = self.send_dashscope_event(model)
        self.start_stream(DASHSCOPE_SSE)
        if model not in DASHSCOPE_CUT_SHORT:
            if self.send_events(events, send, delay):
                self.end_stream()
            return
        if self.send_events(events[:5], send, delay):  # role chunk + 4 content deltas
            self.dashscope_misbehave(model, send)

    def bench_stream(self, body, model, rate):
        """Chunks on a fixed schedule of `rate` a second, each stamped when it is sent."""
        def delta(fields, finish=None):
            return {"choices": [{"delta": fields, "finish_reason": finish, "index": 0}],
                    "object": "chat.completion.chunk", "model": model, "id": "chatcmpl-bench"}

        send = self.send_dashscope_event(model)
        count = bench_chunk_count(body)
        self.start_stream(DASHSCOPE_SSE)
        send(delta({"content": "", "role": "assistant"}))
        start = time.monotonic()
        for i in range(count):
            if not self.pause(max(0.0, start + (i + 1) / rate - time.monotonic())):
                return
            send(delta({"content": f"{stamp()}字{i % 10} "}))
        send(delta({"content": ""}, "stop"))
        send({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": count,
                                       "total_tokens": 10 + count}})
        send("[DONE]")
        self.end_stream()

    def dashscope_misbehave(self, model, send):
        if model == FAULT_DROP:
            return self.drop_connection()
        if model == FAULT_STALL:
            self.pause(30)
        elif model == FAULT_MALFORMED:
            self.send_chunk('data: {"choices":[{"delta":{"content":"坏\n\n'.encode())
        elif model == FAULT_OUTPUT_MODERATION:
            send({"error": {"message": "<400> InternalError.Algo.DataInspectionFailed: Output data "
                                       "may contain inappropriate content.",
                            "type": "data_inspection_failed", "param": None,
                            "code": "data_inspection_failed"}})
        self.end_stream()

    # -- Wan images (DashScope native) -----------------------------------------

    def wan_submit(self):
        if not self.native_key_ok():
            return
        if self.headers.get("X-DashScope-Async") != "enable":
            return self.send_json(403, native_error(
                "AccessDenied", "current user api does not support synchronous calls"))
        body = self.body if isinstance(self.body, dict) else {}
        parameters = body.get("parameters") or {}
        prompt = (body.get("input") or {}).get("prompt", "")
        prompt = prompt if isinstance(prompt, str) else ""
        refusal = self.wan_account_refusal(prompt)
        if refusal:
            status, code, message = refusal
            return self.send_json(status, native_error(code, message))
        message = wan_parameter_error(parameters)
        if message:
            return self.send_json(400, native_error("InvalidParameter", message))
        refusal = next((WAN_CONTENT_REFUSALS[m] for m in WAN_CONTENT_REFUSALS if m in prompt), None)
        if refusal:
            status, code, message = refusal
            return self.send_json(status, native_error(code, message))
        if WAN_SUBMIT_HTML in prompt:
            return self.send_body(200, GATEWAY_HTML, "text/html")
        if WAN_SUBMIT_502 in prompt:
            return self.send_body(502, GATEWAY_HTML, "text/html")
        if WAN_SUBMIT_NO_OUTPUT in prompt:
            return self.send_json(200, {"request_id": new_request_id()})
        marker = wan_marker(prompt)
        task = {"id": str(uuid.uuid4()), "key": self.bearer_key(), "model": body.get("model"),
                "prompt": prompt, "n": int(parameters.get("n", 4)),
                "prompt_extend": parameters.get("prompt_extend", True) is not False,
                "parameters": parameters, "marker": marker, "submit_time": local_time()}
        pending, running = WAN_SLOW_TIMES if WAN_SLOW in prompt else WAN_TIMES
        if marker == WAN_CANCEL:
            pending = running = WAN_CANCEL_AFTER
        task.update(pending=pending, duration=0 if marker == WAN_UNKNOWN else running)
        self.fake.add_task(task)
        self.send_json(200, {"output": {"task_status": "PENDING", "task_id": task["id"]},
                             "request_id": new_request_id()})

    def wan_edit_submit(self):
        """Wan image editing: like a text-to-image submit, for an editing model and 1-3 pictures."""
        body = self.body if isinstance(self.body, dict) else {}
        images = (body.get("input") or {}).get("images")
        if not self.native_key_ok():
            return
        if self.headers.get("X-DashScope-Async") == "enable":
            if body.get("model") not in WAN_EDIT_MODELS:
                return self.send_json(400, native_error("InvalidParameter", "Model not exist."))
            if not (isinstance(images, list) and 1 <= len(images) <= 3
                    and all(isinstance(i, str) and i.startswith(("data:image/", "http")) for i in images)):
                return self.send_json(400, native_error("InvalidParameter",
                                                        "The input images must be 1 to 3 image URLs."))
        self.wan_submit()

    def wan_account_refusal(self, prompt):
        """(status, code, message) when a marker refuses the submit, else None."""
        if WAN_THROTTLE_ONCE in prompt and self.fake.count_call((WAN_THROTTLE_ONCE, prompt)) == 1:
            return WAN_RATE_LIMITED
        return next((WAN_ACCOUNT_REFUSALS[m] for m in WAN_ACCOUNT_REFUSALS if m in prompt), None)

    def wan_task(self, task_id):
        if not self.native_key_ok():
            return
        task = self.fake.tasks.get(task_id)
        if task is None:
            return self.send_json(200, {"request_id": new_request_id(),
                                        "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
        if task["marker"] == WAN_POLL_HTML:
            return self.send_body(200, GATEWAY_HTML, "text/html")
        if task["marker"] == WAN_POLL_NO_OUTPUT:
            return self.send_json(200, {"request_id": new_request_id()})
        self.send_json(200, wan_task_view(task, self.fake.url))

    def oss_image(self, task_id, index):
        marker = (self.fake.tasks.get(task_id) or {}).get("marker")
        if marker == WAN_EXPIRED:
            xml = OSS_EXPIRED_XML.format(request_id=uuid.uuid4().hex[:24].upper(),
                                         host_id=OSS_HOST_ID)
            return self.send_body(403, xml.encode(), "application/xml")
        if marker == WAN_FLAKY_DOWNLOAD and self.fake.count_call(("oss", task_id, index)) == 1:
            return self.send_body(503, b"", "text/plain")
        if marker == WAN_NOT_IMAGE:
            return self.send_body(200, b"<html>oops</html>", "text/html")
        if marker == WAN_HUGE:
            return self.send_body(200, bomb_png(), "image/png")
        self.send_body(200, PNG, "image/png")

    # -- OpenRouter ------------------------------------------------------------

    def openrouter_models(self):
        wanted = (self.query.get("output_modalities") or [None])[0]
        self.send_json(200, {"data": openrouter_model_list(wanted)})

    def openrouter_key(self):
        if self.openrouter_key_ok():
            self.send_json(200, {"data": {"label": "sk-or-v1-abc...xyz", "limit": None,
                                          "limit_remaining": None, "usage": 0.12,
                                          "is_free_tier": False}})

    def openrouter_chat(self):
        if not self.openrouter_key_ok():
            return
        body = self.body if isinstance(self.body, dict) else {}
        model = body.get("model")
        if model not in OPENROUTER_MODELS:
            return self.send_json(400, {"error": {"message": f"{model} is not a valid model ID",
                                                  "code": 400}, "user_id": "user_1"})
        if has_pictures(body) and model not in OPENROUTER_SEEING_MODELS:
            return self.send_json(404, {"error": {"message": "No endpoints found that support image input",
                                                  "code": 404}})
        fault = openrouter_fault(OR_FAULT_MODERATION if is_flagged(body) else model, last_user_message(body))
        if fault:
            status, error, headers = fault
            return self.send_json(status, error, headers)
        answer = OpenRouterAnswer(body, OR_FAULT_OUTPUT_MODERATION if is_output_flagged(body) else model)
        if body.get("stream") is True:
            return self.openrouter_stream(answer)
        wait = {OR_FAULT_STALL: 30, OR_FAULT_SLOW_FIRST: 2}.get(model, 0)
        if wait and not self.pause(wait):
            return
        if model == OR_FAULT_MALFORMED:
            return self.send_body(200, b'{"id":"' + answer.id.encode() + b'","choices":[{"mess',
                                  "application/json", {"X-Generation-Id": answer.id})
        last = last_user_message(body)
        if OR_HTML in last:
            return self.send_body(200, GATEWAY_HTML, "text/html")
        if OR_NO_CHOICES in last:
            return self.send_json(200, {"id": answer.id, "object": "chat.completion"})
        self.send_json(200, answer.completion(), {"X-Generation-Id": answer.id})

    def openrouter_stream(self, answer):
        def send(payload):
            text = payload if isinstance(payload, str) else dumps(payload)
            self.send_chunk(f"data: {text}\n\n".encode())

        self.start_stream(OPENROUTER_SSE, {"X-Generation-Id": answer.id})
        self.send_chunk(b": OPENROUTER PROCESSING\n\n")
        if not self.pause(0.02):
            return
        self.send_chunk(b": OPENROUTER PROCESSING\n\n")
        if answer.model == OR_FAULT_SLOW_FIRST and not self.pause(2):
            return
        events, delay = answer.events(), self.fake.chunk_delay
        if answer.model not in OPENROUTER_CUT_SHORT:
            if self.send_events(events, send, delay):
                self.end_stream()
            return
        if not self.send_events(events[:5], send, delay):  # role chunk + 4 content deltas
            return
        if answer.model == OR_FAULT_DROP:
            return self.drop_connection()
        if answer.model == OR_FAULT_STALL:
            if not self.pause(30):
                return
        elif answer.model == OR_FAULT_MALFORMED:
            self.send_chunk(f'data: {{"id":"{answer.id}","choices":[{{"index":0,"delta":'
                            f'{{"content":"坏\n\n'.encode())
        else:  # midstream, output-moderation
            send(answer.midstream_error())
        self.end_stream()


class FakeUpstream:
    """Both providers on one local port; see the module docstring for the knobs. Also a
    context manager: started on entry, stopped on exit."""

    def __init__(self, chunk_delay=0.01):
        self.chunk_delay = chunk_delay
        self.url = None
        self.requests = []
        self.tasks = {}
        self.max_in_flight = 0  # most Wan tasks of one key submitted and not yet ended
        self.max_concurrent_seen = 0  # most Wan tasks of one key in progress at once
        self.max_in_flight_by_key = {}
        self.max_concurrent_by_key = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._calls = {}
        self._connections = set()
        self._server = None

    @property
    def dashscope_base(self):
        return self.url

    @property
    def openrouter_base(self):
        return self.url + OR_PREFIX

    def start(self, port=0):
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self.url

    def stop(self):
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # end kept-alive and stalled connections too
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def clear(self):
        """Forget the requests and the maxima; tasks and the [throttle-once] memory stay."""
        with self._lock:
            self.requests.clear()
            self.max_in_flight = self.max_concurrent_seen = 0
            self.max_in_flight_by_key.clear()
            self.max_concurrent_by_key.clear()

    def record(self, entry):
        with self._lock:
            self.requests.append(entry)

    def count_call(self, model):
        """How many requests this server has had for `model`, this one included."""
        with self._lock:
            self._calls[model] = self._calls.get(model, 0) + 1
            return self._calls[model]

    def add_task(self, task):
        """Store a Wan task and fix its `started` and `ends` (monotonic seconds).

        First come, first served per key: a task starts once fewer than WAN_MAX_CONCURRENT
        earlier tasks of its key are unended. A task with duration 0 ([unknown]) takes no slot.
        """
        with self._lock:
            now = time.monotonic()
            task.update(submitted=now, wall=time.time(), started=now, ends=now)
            if task["duration"]:
                key = task["key"]
                mine = [t for t in self.tasks.values() if t["key"] == key and t["ends"] > now]
                ends = sorted(t["ends"] for t in mine)
                start = max([now] + [t["started"] for t in mine])
                start = next(moment for moment in [start] + [e for e in ends if e > start]
                             if sum(e > moment for e in ends) < WAN_MAX_CONCURRENT)
                task.update(started=start, ends=start + task["duration"])
                self.note_max(self.max_in_flight_by_key, key, len(mine) + 1)
                self.note_max(self.max_concurrent_by_key, key, sum(e > start for e in ends) + 1)
                self.max_in_flight = max(self.max_in_flight_by_key.values())
                self.max_concurrent_seen = max(self.max_concurrent_by_key.values())
            self.tasks[task["id"]] = task

    @staticmethod
    def note_max(maxima, key, value):
        maxima[key] = max(maxima.get(key, 0), value)

    def track(self, connection):
        with self._lock:
            self._connections.add(connection)

    def untrack(self, connection):
        with self._lock:
            self._connections.discard(connection)


if __name__ == "__main__":
    fake = FakeUpstream()
    fake.start(int(sys.argv[1]) if len(sys.argv) > 1 else 8089)
    print(f"DashScope base:  {fake.dashscope_base}")
    print(f"OpenRouter base: {fake.openrouter_base}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
