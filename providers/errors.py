"""Upstream failures as typed errors, each with a sentence for the user (Chinese, and the
msgid of its translation: `lazy_gettext` picks the reader's language when it is shown).

Map by the provider's code first and the HTTP status second: DashScope's
`Arrearage` is a 400, OpenRouter puts the status in `error.code`.
"""
import json

from flask_babel import lazy_gettext


class ProviderError(Exception):
    user_message = lazy_gettext("模型服务暂时不可用，请稍后再试。")
    is_retryable = False
    kinds = {}  # every kind by its class name: the code a failed answer or painting keeps (services/failures.py)

    def __init__(self, detail="", retry_after=None):
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail
        self.retry_after = retry_after

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ProviderError.kinds[cls.__name__] = cls


ProviderError.kinds["ProviderError"] = ProviderError


class MissingKey(ProviderError):
    user_message = lazy_gettext("还没有设置 API Key，请先到「设置」里填写并保存。")


class KeyForAnotherUrl(ProviderError):
    user_message = lazy_gettext("保存的 API Key 只会发往保存它时的服务地址，没有发往这个地址。"
                                "要使用这个地址，请在「设置」里重新输入 API Key 并保存。")


class InvalidKey(ProviderError):
    user_message = lazy_gettext("API Key 无效，或与所选地域不匹配（北京的 Key 不能用于新加坡或美国），请在「设置」里检查 Key 与地域。")


class NoCredit(ProviderError):
    user_message = lazy_gettext("账户欠费或余额不足，请充值后再试。")


class QuotaExceeded(ProviderError):
    user_message = lazy_gettext("额度已用完（或免费额度已用尽），请开通付费或提高配额后再试。")


class RateLimited(ProviderError):
    user_message = lazy_gettext("请求太频繁，已达到速率上限，请稍等片刻再试。")
    is_retryable = True


class ModelNotFound(ProviderError):
    user_message = lazy_gettext("模型不存在或未开通，请检查模型名称（区分大小写）或在控制台开通该模型。")


class AccessDenied(ProviderError):
    user_message = lazy_gettext("没有权限调用该模型，请在控制台开通后再试。")


class BadRequest(ProviderError):
    user_message = lazy_gettext("请求参数有误，模型服务拒绝了这次请求，请检查模型名称和设置。")


class InputTooLong(ProviderError):
    user_message = lazy_gettext("对话内容超出了模型的长度上限，请新建对话或删减内容后再试。")


class InputModerated(ProviderError):
    user_message = lazy_gettext("输入内容未通过安全审核，请修改后再试。")


class OutputModerated(ProviderError):
    user_message = lazy_gettext("回答内容被安全审核中断，已保留之前生成的部分。")


class ServerBusy(ProviderError):
    user_message = lazy_gettext("模型服务繁忙或暂时出错，请稍后重试，或换一个模型。")
    is_retryable = True


class Timeout(ProviderError):
    user_message = lazy_gettext("模型服务长时间没有响应，请求已超时，请稍后重试。")


class NetworkError(ProviderError):
    user_message = lazy_gettext("无法连接到模型服务，请检查网络或「设置」中的服务地址。")


class StreamDropped(ProviderError):
    user_message = lazy_gettext("回答途中与模型服务的连接中断，已保留收到的部分，可点击「重新生成」。")


class StreamFailed(ProviderError):
    user_message = lazy_gettext("模型服务在回答途中出错，已保留收到的部分，可点击「重新生成」。")


class MalformedData(ProviderError):
    user_message = lazy_gettext("模型服务返回了无法识别的数据，回答已中止，已保留收到的部分。")


DASHSCOPE_CODES = {
    "invalid_api_key": InvalidKey, "InvalidApiKey": InvalidKey,
    "Arrearage": NoCredit,
    "data_inspection_failed": InputModerated, "DataInspectionFailed": InputModerated,
    "model_not_found": ModelNotFound, "ModelNotFound": ModelNotFound,
    "AccessDenied": AccessDenied, "AccessDenied.Unpurchased": AccessDenied,
    "limit_requests": RateLimited, "Throttling": RateLimited,
    "Throttling.RateQuota": RateLimited, "Throttling.BurstRate": RateLimited,
    "insufficient_quota": QuotaExceeded, "Throttling.AllocationQuota": QuotaExceeded,
    "AllocationQuota.FreeTierOnly": QuotaExceeded,
    "InternalError": ServerBusy, "internal_error": ServerBusy, "ServiceUnavailable": ServerBusy,
}

DASHSCOPE_STATUSES = {401: InvalidKey, 403: AccessDenied, 404: ModelNotFound,
                      429: RateLimited, 400: BadRequest}

OPENROUTER_STATUSES = {400: BadRequest, 401: InvalidKey, 402: NoCredit, 403: InputModerated,
                       404: ModelNotFound, 408: Timeout, 429: RateLimited}


class OpenRouterBadModel(BadRequest):
    user_message = lazy_gettext("OpenRouter 上没有这个模型 ID，请检查拼写（格式为「厂商/模型」，例如 openai/gpt-4o）。")


class OpenRouterInvalidKey(InvalidKey):
    user_message = lazy_gettext("OpenRouter API Key 无效或已停用，请在「设置」里检查后重新保存。")


class OpenRouterNoCredit(NoCredit):
    user_message = lazy_gettext("OpenRouter 余额不足，请到 openrouter.ai/credits 充值后再试。")


class OpenRouterRateLimited(RateLimited):
    user_message = lazy_gettext("OpenRouter 请求过多或免费额度已用完，请稍后再试。")


def parse_body(text):
    """The JSON object in an error body, also when it is SSE-framed (`data: {...}`)."""
    text = (text or "").strip()
    if text.startswith("data:"):
        text = text.splitlines()[0][len("data:"):].strip()
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_fields(body):
    """(code, message) from a compatible-mode `{"error": {...}}` or a native flat body."""
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return error.get("code"), str(error.get("message") or "")


def dashscope_error(status, text, retry_after=None):
    code, message = error_fields(parse_body(text))
    if status == 400 and "input length" in message.lower():
        cls = InputTooLong
    elif status >= 500:
        cls = ServerBusy
    else:
        cls = DASHSCOPE_CODES.get(code) or DASHSCOPE_STATUSES.get(status, ProviderError)
    return cls(f"HTTP {status} {code}", retry_after=retry_after)


def dashscope_stream_error(error):
    """An `{"error": ...}` event inside a 200 stream: output moderation, or a failure."""
    code = error.get("code")
    if code in ("data_inspection_failed", "DataInspectionFailed"):
        return OutputModerated(f"stream {code}")
    return StreamFailed(f"stream {code}")


def openrouter_error(status, text, retry_after=None):
    code, message = error_fields(parse_body(text))
    if status == 400 and "context length" in message.lower():
        cls = InputTooLong
    elif status == 400 and "model" in message.lower():
        cls = OpenRouterBadModel
    elif status == 401:
        cls = OpenRouterInvalidKey
    elif status == 402:
        cls = OpenRouterNoCredit
    elif status == 429:
        cls = OpenRouterRateLimited
    elif status >= 500:
        cls = ServerBusy
    else:
        cls = OPENROUTER_STATUSES.get(status, ProviderError)
    return cls(f"HTTP {status} {code}", retry_after=retry_after)


def openrouter_stream_error(error):
    """A top-level `error` event in a 200 stream; 403 is a moderation flag on the output."""
    code = error.get("code")
    return (OutputModerated if code == 403 else StreamFailed)(f"stream {code}")


class ImageLinkExpired(ProviderError):
    user_message = lazy_gettext("图片链接已过期（服务商只保留 24 小时），这张图片无法再下载。")


class DownloadFailed(ProviderError):
    user_message = lazy_gettext("图片下载失败，请稍后重试。")
    is_retryable = True


class NotAnImage(ProviderError):
    user_message = lazy_gettext("服务商返回的不是图片，或图片太大，已放弃保存。")


class ImageTooLarge(NotAnImage):
    user_message = lazy_gettext("图片尺寸超过了服务商能生成的最大尺寸，可能是损坏或恶意的文件，已放弃保存。")


class UnreadableReply(ProviderError):
    user_message = lazy_gettext("模型服务的回复无法识别（可能是中间的网关出错），这次没有得到结果，请稍后重试。")


def reply_object(response):
    """The JSON object of a 200 reply. A broken gateway answers 200 with an HTML page, and a
    changed API with other shapes: UnreadableReply, whose detail names no content."""
    try:
        answer = response.json()
    except (ValueError, RecursionError):
        content_type = response.headers.get("Content-Type", "").split(";")[0]
        raise UnreadableReply(f"200 {content_type or 'no content type'}, not JSON") from None
    if not isinstance(answer, dict):
        raise UnreadableReply(f"200 JSON {type(answer).__name__}, not an object")
    return answer


class IPInfringement(InputModerated):
    user_message = lazy_gettext("提示词疑似涉及知识产权侵权，请修改后再试。")


DASHSCOPE_CODES["IPInfringementSuspect"] = IPInfringement
