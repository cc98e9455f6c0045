"""What went wrong with an answer, a painting or an import, kept on its row as a code (and the
values its sentence quotes) and shown in the reader's language, whoever saved it: a
background thread has no reader, and the person who started the work may not be the one
reading about it.

A code is a ProviderError's class name ("InvalidKey") or one of SENTENCES below; with values
it is saved as a JSON object, {"code": "painting_partial", "kept": 2, ...}, where a value that
is itself a failure (an object) is shown translated too. Rows saved before codes hold a
sentence: shown as it is (translated when it is one of ours).
"""
import json

from flask_babel import force_locale, gettext, lazy_gettext

from providers.errors import ProviderError

SENTENCES = {
    "answer_interrupted": lazy_gettext("服务在回答途中重启，回答被中断，已保留已生成的部分，可点击「重新生成」。"),
    # paintings
    "painting_interrupted": lazy_gettext("服务在生成途中重启，这次生成被中断，请重新提交。"),
    "submit_outcome_unknown": lazy_gettext(
        "提交后没有收到可以识别的回复，不知道任务是否已经创建（可能已经计费），墨言没有再次提交。"
        "请到阿里云百炼控制台查看，需要时再画一次。"),
    "polls_unreadable": lazy_gettext(
        "查询进度时服务商的回复一直无法识别，已停止查询；任务可能已经在服务商那里画完并计费。"
        "请到阿里云百炼控制台查看，需要时再画一次。"),
    "painting_broke": lazy_gettext("出了点问题，这次生成没有完成，请重新提交。"),
    "task_canceled": lazy_gettext("任务已被取消。如需要，请重新提交。"),
    "task_expired": lazy_gettext("服务商已查不到这个任务（任务记录只保留 24 小时），结果无法取回。请重新提交。"),
    "task_timed_out": lazy_gettext("等待超过 %(minutes)s 分钟仍未完成，已停止查询。请稍后重新提交。"),
    # What the provider's task codes mean; its own messages are English and stay in the log.
    "task_invalid_parameter": lazy_gettext(
        "服务商认为参数有误（InvalidParameter），请检查尺寸、张数等参数或修改提示词后重试。"),
    "task_provider_timeout": lazy_gettext("服务商生成超时，请稍后重试。"),
    "task_internal_error": lazy_gettext("服务商内部出错，请稍后重试。"),
    "task_failed": lazy_gettext("服务商没有完成生成（错误码 %(code)s），请修改提示词或参数后重试。"),
    "unknown": lazy_gettext("未知"),
    "no_pictures_given": lazy_gettext("服务商说已经画完，却没有给出任何图片。请重新提交。"),
    "text_instead_of_picture": lazy_gettext("模型只回复了文字，没有返回图片。请换一个图像模型或修改提示词。"),
    "painting_partial": lazy_gettext("生成了 %(kept)s 张，另有 %(failed)s 张失败：%(problem)s"),
    "painting_failed": lazy_gettext("没有得到图片：%(problem)s"),
    # pictures sent with a message, and imports
    "picture_too_big": lazy_gettext("「%(name)s」超过 10 MB，请换一张小一些的图片。"),
    "picture_type": lazy_gettext("「%(name)s」不是 PNG、JPEG 或 WebP 图片。"),
    "picture_pixels": lazy_gettext(
        "「%(name)s」是 %(width)s×%(height)s 像素，请用每边至少 %(min)s 像素、总共不超过 2,500 万像素的图片。"),
    "picture_broken": lazy_gettext("「%(name)s」已损坏，无法读取。"),
    "not_an_export": lazy_gettext("这不是墨言导出的对话文件（JSON）。"),
    "not_json": lazy_gettext("文件不是有效的 JSON，没有导入任何内容。"),
    "bad_json": lazy_gettext("文件不是有效的 JSON，或不是墨言导出的格式，没有导入任何内容。"),
    "bad_conversation": lazy_gettext("文件里有一段对话格式不对，没有导入任何内容。"),
    "bad_message": lazy_gettext("文件里有一条消息格式不对（或太长），没有导入任何内容。"),
    "bad_message_fields": lazy_gettext("文件里有一条消息格式不对，没有导入任何内容。"),
    "bad_field": lazy_gettext("文件里的「%(field)s」格式不对，没有导入任何内容。"),
    "bad_picture": lazy_gettext("文件里有一张图片格式不对，没有导入任何内容。"),
    "import_interrupted": lazy_gettext("导入途中出了问题，没有导入任何内容，请重新导入。"),
}


class Failure(Exception):
    """A failure with its code and values. `saved` is what a row keeps; str() is the
    sentence in the current language."""

    def __init__(self, code, **values):
        super().__init__(code)
        self.code, self.values = code, values

    @classmethod
    def of(cls, error):
        """The failure an upstream error stands for: its kind (the ProviderError subclass)."""
        return cls(type(error).__name__)

    def data(self):
        values = {name: value.data() if isinstance(value, Failure) else value for name, value in self.values.items()}
        return {"code": self.code, **values}

    @property
    def saved(self):
        return json.dumps(self.data(), ensure_ascii=False) if self.values else self.code

    def __str__(self):
        return sentence(self.data())


def error_text(saved):
    """The sentence of a saved failure in the reader's language (a plain string: Jinja still
    escapes it, and a value may quote the upstream)."""
    if not saved:
        return ""
    try:
        data = json.loads(saved) if saved.startswith("{") else {"code": saved}
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("code"), str) or template_of(data["code"]) is None:
        return str(gettext(saved))  # saved before codes: a sentence
    return sentence(data)


def source_text(saved):
    """The sentence in the source language (Chinese), as a JSON export writes it: importing
    the file again, anywhere, shows it in the reader's language."""
    if not saved:
        return ""
    with force_locale("zh"):
        return error_text(saved)


def sentence(data):
    values = {name: sentence(value) if isinstance(value, dict) else value
              for name, value in data.items() if name != "code"}
    text = str(template_of(data["code"]))
    return text % values if values else text


def template_of(code):
    if code in SENTENCES:
        return SENTENCES[code]
    kind = ProviderError.kinds.get(code)
    return kind.user_message if kind else None
