"""Conversations out to Markdown and JSON, and JSON back in, with nothing lost."""
import base64
import datetime

from flask_babel import gettext

from models import Conversation, Message, db
from services import attachments

FORMAT = "moyan.conversations"
VERSION = 1
CONVERSATION_FIELDS = ("title", "provider", "model", "system_prompt", "thinking", "is_pinned",
                       "created_at", "updated_at")
MESSAGE_FIELDS = ("role", "content", "reasoning", "status", "error", "provider", "model",
                  "prompt_tokens", "completion_tokens", "total_tokens", "created_at")
ROLES = {"user", "assistant"}
STATUSES = {Message.DONE, Message.STOPPED, Message.ERROR, Message.INTERRUPTED}


def to_json(conversations):
    return {"format": FORMAT, "version": VERSION,
            "exported_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "conversations": [conversation_data(c) for c in conversations]}


def conversation_data(conversation):
    data = {name: plain(getattr(conversation, name)) for name in CONVERSATION_FIELDS}
    data["messages"] = [{name: plain(getattr(m, name)) for name in MESSAGE_FIELDS}
                        for m in conversation.messages()]
    for message, m in zip(data["messages"], conversation.messages()):
        if pictures := m.pictures():
            message["pictures"] = [picture_data(picture) for picture in pictures]
    return data


def picture_data(picture):
    """A picture sent with a message, in the file itself: the export needs nothing else."""
    return {"content_type": picture.content_type, "data": attachments.data_url(picture).partition(",")[2]}


def plain(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def to_markdown(conversation):
    lines = [f"# {conversation.title}", ""]
    if conversation.system_prompt:
        lines += ["> " + gettext("系统提示词：%(prompt)s", prompt=conversation.system_prompt.replace("\n", "\n> ")), ""]
    for m in conversation.messages():
        who = f"**{gettext('你')}**" if m.role == "user" else f"**{m.model or gettext('助手')}**"
        lines += [f"{who} · {m.created_at:%Y-%m-%d %H:%M}", "", m.content, ""]
        if pictures := m.pictures():
            lines += [gettext("（附图 %(count)s 张，图片本身在 JSON 导出里）", count=len(pictures)), ""]
        if m.error:
            lines += [f"> {m.error}", ""]
    return "\n".join(lines)


class NotAnExport(ValueError):
    """The file is not a Moyan export; the message says so in the reader's language."""


def import_json(data):
    """Create the conversations in `data` (an export); return how many."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("conversations"), list):
        raise NotAnExport(gettext("这不是墨言导出的对话文件（JSON）。"))
    conversations = [checked_conversation(c) for c in data["conversations"]]
    with db.atomic():
        for fields, messages in conversations:
            conversation = Conversation.create(**fields)
            for message, pictures in messages:
                created = Message.create(conversation=conversation, **message)
                for picture in pictures:
                    save_picture(picture, created)
    return len(conversations)


def checked_conversation(data):
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise NotAnExport(gettext("文件里有一段对话格式不对，没有导入任何内容。"))
    fields = {name: parsed(name, data.get(name)) for name in CONVERSATION_FIELDS if data.get(name) is not None}
    messages = []
    for message in data["messages"]:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise NotAnExport(gettext("文件里有一条消息格式不对，没有导入任何内容。"))
        fields_of_message = {name: parsed(name, message.get(name)) for name in MESSAGE_FIELDS
                             if message.get(name) is not None}
        if fields_of_message.get("status") not in STATUSES:
            fields_of_message["status"] = Message.INTERRUPTED if message.get("role") == "assistant" else Message.DONE
        messages.append((fields_of_message, checked_pictures(message.get("pictures") or [])))
    return fields, messages


def save_picture(data, message):
    try:
        attachments.save_picture(data, message=message)
    except attachments.BadPicture as exc:
        raise NotAnExport(str(exc)) from None


def checked_pictures(pictures):
    """The bytes of a message's exported pictures."""
    try:
        return [base64.b64decode(picture["data"], validate=True) for picture in pictures[:attachments.MAX_PICTURES]]
    except (TypeError, KeyError, ValueError):
        raise NotAnExport(gettext("文件里有一张图片格式不对，没有导入任何内容。")) from None


def parsed(name, value):
    try:
        if name.endswith("_at"):
            return datetime.datetime.fromisoformat(value)
        if name.endswith("_tokens"):
            return int(value)
        if name in ("thinking", "is_pinned"):
            return bool(value)
        if not isinstance(value, str) or len(value) > 1_000_000:
            raise ValueError(name)
        return value
    except (TypeError, ValueError):
        raise NotAnExport(gettext("文件里的「%(field)s」格式不对，没有导入任何内容。", field=name)) from None
