"""Alibaba Cloud Bailian (DashScope): Qwen chat in compatible mode, Wan image tasks."""
import re

from flask_babel import lazy_gettext

from providers import errors
from providers.base import ChatClient

REGIONS = {
    "cn": (lazy_gettext("中国大陆（北京）"), "https://dashscope.aliyuncs.com"),
    "intl": (lazy_gettext("国际（新加坡）"), "https://dashscope-intl.aliyuncs.com"),
    "us": (lazy_gettext("美国（弗吉尼亚）"), "https://dashscope-us.aliyuncs.com"),
}
DEFAULT_BASE_URL = REGIONS["cn"][1]
# A task id goes into the polling URL's path: nothing but what Wan's ids are made of.
TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class DashScopeClient(ChatClient):
    name = "dashscope"
    reasoning_field = "reasoning_content"

    @property
    def chat_base(self):
        return f"{self.base_url}/compatible-mode/v1"

    @property
    def native_base(self):
        return f"{self.base_url}/api/v1"

    def extra_body(self, thinking):
        # Thinking defaults differ per model (and need streaming, which every call here is): always say it.
        return {"enable_thinking": bool(thinking), "stream_options": {"include_usage": True}}

    def submit_image_task(self, model, prompt, negative_prompt, size, n, seed, prompt_extend, watermark):
        """Start a Wan text-to-image task; return (task_id, request_id)."""
        parameters = {"size": size, "n": n, "prompt_extend": prompt_extend, "watermark": watermark}
        if seed is not None:
            parameters["seed"] = seed
        body = {"model": model, "input": {"prompt": prompt}, "parameters": parameters}
        if negative_prompt:
            body["input"]["negative_prompt"] = negative_prompt
        return self.submit_task("text2image", body)

    def submit_edit_task(self, model, instruction, images, n, seed, prompt_extend, watermark):
        """Start a Wan image editing task on 1–3 pictures (URLs or data URLs); return
        (task_id, request_id). No size: the result keeps the picture's proportions."""
        parameters = {"n": n, "prompt_extend": prompt_extend, "watermark": watermark}
        if seed is not None:
            parameters["seed"] = seed
        body = {"model": model, "input": {"prompt": instruction, "images": images}, "parameters": parameters}
        return self.submit_task("image2image", body)

    def submit_task(self, kind, body):
        """Submit a Wan task (text2image or image2image); return (task_id, request_id)."""
        answer = errors.reply_object(self.request(
            "POST", f"{self.native_base}/services/aigc/{kind}/image-synthesis",
            json=body, headers={"X-DashScope-Async": "enable"}, is_repeatable=False))
        output = answer.get("output")
        task_id = output.get("task_id") if isinstance(output, dict) else None
        if not isinstance(task_id, str) or not TASK_ID.match(task_id):
            raise errors.UnreadableReply("submit answered without a task id")
        return task_id, request_id_of(answer)

    def get_task(self, task_id):
        """The task's `output` (task_status, results, code, message) and its request id."""
        answer = errors.reply_object(self.request("GET", f"{self.native_base}/tasks/{task_id}"))
        output = answer.get("output")
        if not isinstance(output, dict) or not isinstance(output.get("task_status"), str):
            raise errors.UnreadableReply("task answered without a status")
        results = output.get("results", [])
        if not isinstance(results, list) or not all(isinstance(result, dict) for result in results):
            raise errors.UnreadableReply("task results are not a list of objects")
        return output, request_id_of(answer)

    def error_from_response(self, status, text, retry_after):
        return errors.dashscope_error(status, text, retry_after)

    def error_from_event(self, error):
        return errors.dashscope_stream_error(error)


def request_id_of(answer):
    request_id = answer.get("request_id")
    return request_id[:100] if isinstance(request_id, str) else ""
