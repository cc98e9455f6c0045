"""Conversations out to Markdown and JSON, and JSON back in, with nothing lost."""
import datetime

from flask_babel import gettext

from models import Conversation, Message, db
from services import costs

FORMAT = "moyan.conversations"
VERSION = 2  # 2: every version of every turn, linked by `id` and `parent_id`
CONVERSATION_FIELDS = ("title", "provider", "model", "system_prompt", "thinking", "is_pinned",
                       "created_at", "updated_at")
MESSAGE_FIELDS = ("role", "content", "reasoning", "status", "error", "provider", "model",
                  "prompt_tokens", "completion_tokens", "total_tokens", "created_at", "is_excluded", "moderated",
                  "cost", "currency", "is_usage_estimate", "is_chosen")
ROLES = {"user", "assistant"}
STATUSES = {Message.DONE, Message.STOPPED, Message.ERROR, Message.INTERRUPTED}


def to_json(conversations):
    return {"format": FORMAT, "version": VERSION,
            "exported_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "conversations": [conversation_data(c) for c in conversations]}


def conversation_data(conversation):
    data = {name: plain(getattr(conversation, name)) for name in CONVERSATION_FIELDS}
    data["messages"] = [{"id": m.id, "parent_id": m.parent_id,
                         **{name: plain(getattr(m, name)) for name in MESSAGE_FIELDS}}
                        for m in conversation.message_set.order_by(Message.id)]
    return data


def plain(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def to_markdown(conversation):
    lines = [f"# {conversation.title}", ""]
    if conversation.system_prompt:
        lines += ["> " + gettext("系统提示词：%(prompt)s", prompt=conversation.system_prompt.replace("\n", "\n> ")), ""]
    for m in conversation.messages():
        who = f"**{gettext('你')}**" if m.role == "user" else f"**{m.model or gettext('助手')}**"
        lines += [f"{who} · {m.created_at:%Y-%m-%d %H:%M}", "", m.content, ""]
        if m.error:
            lines += [f"> {m.error}", ""]
        if m.is_excluded:
            lines += ["> " + gettext("（不在上下文中：之后的请求没有带上这条消息）"), ""]
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
            new_ids = {}  # the file's message ids -> ours
            for old_id, old_parent, message in messages:
                created = Message.create(conversation=conversation, parent_id=new_ids.get(old_parent), **message)
                new_ids[old_id] = created.id
                costs.record_imported(message, conversation.id)
            Message.update_path(conversation.id)
    return len(conversations)


def checked_conversation(data):
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise NotAnExport(gettext("文件里有一段对话格式不对，没有导入任何内容。"))
    fields = {name: parsed(name, data.get(name)) for name in CONVERSATION_FIELDS if data.get(name) is not None}
    messages, previous = [], None
    for number, message in enumerate(data["messages"]):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise NotAnExport(gettext("文件里有一条消息格式不对，没有导入任何内容。"))
        fields_of_message = {name: parsed(name, message.get(name)) for name in MESSAGE_FIELDS
                             if message.get(name) is not None}
        if fields_of_message.get("status") not in STATUSES:
            fields_of_message["status"] = Message.INTERRUPTED if message.get("role") == "assistant" else Message.DONE
        # A version 1 file holds one path: each message follows the one before it.
        old_id = message.get("id", f"#{number}")
        old_parent = message.get("parent_id") if "id" in message else previous
        if not all(isinstance(v, (int, str, type(None))) for v in (old_id, old_parent)):
            raise NotAnExport(gettext("文件里有一条消息格式不对，没有导入任何内容。"))
        messages.append((old_id, old_parent, fields_of_message))
        previous = old_id
    return fields, messages


def parsed(name, value):
    try:
        if name.endswith("_at"):
            return datetime.datetime.fromisoformat(value)
        if name.endswith("_tokens"):
            return int(value)
        if name == "cost":
            return float(value)
        if name in ("thinking", "is_pinned", "is_excluded", "is_usage_estimate", "is_chosen"):
            return bool(value)
        if not isinstance(value, str) or len(value) > 1_000_000:
            raise ValueError(name)
        return value
    except (TypeError, ValueError):
        raise NotAnExport(gettext("文件里的「%(field)s」格式不对，没有导入任何内容。", field=name)) from None
