"""Conversations out to Markdown and JSON, and JSON back in, with nothing lost.

An import can be big (16 MB holds 400,000 short messages) and one gevent worker serves
everyone, so it runs as a background job that pauses every few milliseconds. Even the JSON
is read a piece at a time: the C decoder takes one message at a time, after a regular
expression has checked that it is a small flat object, so no file anyone sends holds the
worker for long. Everything is checked before the first row is written: a refused file
imports nothing.
"""
import base64
import codecs
import datetime
import json
import logging
import re
import threading
import time
import uuid

from flask import current_app
from flask_babel import force_locale, get_locale, gettext

from db import database
from models import Conversation, ImportJob, Message, now
from providers import MODEL_ID
from services import attachments, costs
from services import settings as provider_settings
from services.failures import Failure, error_text, source_text

log = logging.getLogger(__name__)

FORMAT = "moyan.conversations"
VERSION = 2  # 2: every version of every turn, linked by `id` and `parent_id`
CONVERSATION_FIELDS = ("title", "provider", "model", "system_prompt", "thinking", "is_pinned",
                       "created_at", "updated_at", "export_id")
MESSAGE_FIELDS = ("role", "content", "reasoning", "status", "error", "provider", "model",
                  "prompt_tokens", "completion_tokens", "total_tokens", "created_at", "is_excluded", "moderated",
                  "cost", "currency", "is_usage_estimate", "is_chosen")
ROLES = {"user", "assistant"}
STATUSES = {Message.DONE, Message.STOPPED, Message.ERROR, Message.INTERRUPTED}
MAX_TEXT = 1_000_000  # characters in one field
MAX_TOKENS = 2**31 - 1  # the largest integer column (PostgreSQL's integer)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

BATCH = 100  # messages written in one transaction: each holds the worker a few ms
PAUSE_AFTER = 0.01  # seconds of work between two pauses
PROGRESS_EVERY = 1.0  # seconds between two progress updates while reading
DECODE_CHUNK = 1 << 20  # bytes turned into text at once

# Why a file is refused: failure codes (services/failures.py has their sentences).
NOT_AN_EXPORT = "not_an_export"
BAD_JSON = "bad_json"
BAD_CONVERSATION = "bad_conversation"
BAD_MESSAGE = "bad_message"


def to_json(conversations):
    return {"format": FORMAT, "version": VERSION,
            "exported_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "conversations": [conversation_data(c) for c in conversations]}


def conversation_data(conversation):
    data = {name: plain(getattr(conversation, name)) for name in CONVERSATION_FIELDS}
    data["messages"] = []
    for m in conversation.message_set.order_by(Message.id):
        message = {"id": m.id, "parent_id": m.parent_id, **{name: plain(getattr(m, name)) for name in MESSAGE_FIELDS},
                   "error": source_text(m.error)}
        if pictures := m.pictures():
            message["pictures"] = [picture_data(picture) for picture in pictures]
        data["messages"].append(message)
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
            lines += [f"> {error_text(m.error)}", ""]
        if m.is_excluded:
            lines += ["> " + gettext("（不在上下文中：之后的请求没有带上这条消息）"), ""]
    return "\n".join(lines)


def file_name(title, extension):
    """A download name from a title: one line, no path, not too long."""
    name = " ".join(CONTROL_CHARACTERS.sub(" ", title).replace("/", " ").replace("\\", " ").split())
    return f"{name[:Conversation.MAX_TITLE] or gettext('墨言对话')}.{extension}"


def one_line_title(text):
    """A title as rename keeps them: one line of at most 100 characters."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())[:Conversation.MAX_TITLE]


class NotAnExport(Failure):
    """The file is not a Moyan export: the job keeps why, shown in the reader's language."""


# -- import: a background job ---------------------------------------------------------------

def start_import(raw):
    """Start importing the bytes of an export; return its job, at once."""
    job = ImportJob.create()
    # An untitled conversation is named in the language of the person importing.
    threading.Thread(target=run_import, args=(current_app._get_current_object(), job.id, raw, str(get_locale())),
                     name=f"import-{job.id}", daemon=True).start()
    return job


def run_import(app, job_id, raw, locale):
    with app.app_context(), force_locale(locale), database.connection_context():
        job = ImportJob.get_by_id(job_id)
        pause = Pauser(job)
        try:
            conversations = read_export(text_of(raw, pause), pause)
            write(job, conversations, pause)
        except NotAnExport as exc:
            end(job, ImportJob.FAILED, exc)
        except Exception:
            log.exception("import %s failed", job_id)
            end(job, ImportJob.FAILED, Failure("import_interrupted"))


def end(job, status, failure=None):
    job.status, job.error, job.updated_at = status, failure.saved if failure else "", now()
    job.save()


class Pauser:
    """Called between small pieces of work: every few milliseconds it lets the worker serve
    others (under gevent, time.sleep yields to the other greenlets), and now and then it
    tells the job's page that the job is alive."""

    def __init__(self, job):
        self.job = job
        self.last_pause = self.last_progress = time.monotonic()

    def __call__(self):
        moment = time.monotonic()
        if moment - self.last_pause < PAUSE_AFTER:
            return
        if moment - self.last_progress >= PROGRESS_EVERY:
            self.job.updated_at = now()
            self.job.save(only=[ImportJob.updated_at])
            self.last_progress = moment
        time.sleep(0.001)  # not 0: gevent then also polls the sockets
        self.last_pause = time.monotonic()


def text_of(raw, pause):
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    parts = []
    try:
        for start in range(0, len(raw), DECODE_CHUNK):
            parts.append(decoder.decode(raw[start:start + DECODE_CHUNK]))
            pause()
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise NotAnExport("not_json") from None
    return "".join(parts)


def write(job, conversations, pause):
    """Write the checked conversations, BATCH messages a transaction; on failure remove what
    was written, so an import is whole or nothing."""
    job.status, job.messages_total = ImportJob.WRITING, sum(len(m) for _, m in conversations)
    job.save()
    created, replaced = [], []  # new rows; (old row, its newer copy, export id) for the end
    try:
        for fields, messages in conversations:
            existing = existing_conversation(fields.get("export_id"))
            if existing is not None and not is_newer(fields.get("updated_at"), existing.updated_at):
                job.skipped += 1  # already here, as new as the file's copy
                job.messages_total -= len(messages)
                continue
            if existing is not None:  # the file's copy is newer: written beside it, swapped at the end
                fields = {**fields, "export_id": uuid.uuid4().hex}
            created.append(Conversation.create(**fields).id)
            if existing is not None:
                replaced.append((existing.id, created[-1], existing.export_id))
            pause()
            write_messages(job, created[-1], messages, pause)
        for old, new, export_id in replaced:
            take_over(old, new, export_id, pause)
    except Exception:
        remove(created, pause)
        raise
    job.conversations, job.updated = len(created) - len(replaced), len(replaced)
    end(job, ImportJob.DONE)


def write_messages(job, conversation_id, messages, pause):
    """BATCH messages a transaction, each linked to its parent by our own ids (the file's
    ids are its own); then the chosen versions make the conversation's visible path."""
    new_ids = {}  # the file's message id -> ours
    for start in range(0, len(messages), BATCH):
        with database.atomic():
            for old_id, old_parent, row, pictures in messages[start:start + BATCH]:
                new_ids[old_id] = (Message.insert(conversation=conversation_id, parent_id=new_ids.get(old_parent),
                                                  **row).execute())
                costs.record_imported(row, conversation_id)
                for picture in pictures:
                    save_picture(picture, new_ids[old_id])
            job.messages_done += len(messages[start:start + BATCH])
            job.updated_at = now()
            job.save(only=[ImportJob.messages_done, ImportJob.updated_at])
        pause()
    Message.update_path(conversation_id)


def remove(conversation_ids, pause):
    """Delete what an import had written, BATCH messages at a time."""
    for conversation_id in conversation_ids:
        remove_messages(conversation_id, pause)
        Conversation.delete().where(Conversation.id == conversation_id).execute()


def remove_messages(conversation_id, pause):
    some = Message.select(Message.id).where(Message.conversation == conversation_id).limit(BATCH)
    while Message.delete().where(Message.id.in_(some)).execute():
        pause()


def take_over(old_id, new_id, export_id, pause):
    """Once everything is written, the file's newer copy (written as `new_id`) becomes
    conversation `old_id`: its links and place in the sidebar stay."""
    remove_messages(old_id, pause)
    copy = Conversation.get_by_id(new_id)
    with database.atomic():
        Message.update(conversation=old_id).where(Message.conversation == new_id).execute()
        costs.move_imported(new_id, old_id)
        Conversation.delete().where(Conversation.id == new_id).execute()
        Conversation.update(**{name: getattr(copy, name) for name in CONVERSATION_FIELDS if name != "export_id"},
                            export_id=export_id).where(Conversation.id == old_id).execute()


# -- reading the JSON a piece at a time ------------------------------------------------------

SPACE = re.compile(r"[ \t\n\r]*+")
STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
SCALAR = rf'(?:{STRING}|-?[0-9][-+.0-9eE]*+|true|false|null)'
KEY = re.compile(STRING)
ONE_SCALAR = re.compile(SCALAR)
# A message: a flat object of a few scalars (an export's have 11).
FLAT_OBJECT = re.compile(rf'\{{{SPACE.pattern}(?:{STRING}{SPACE.pattern}:{SPACE.pattern}{SCALAR}'
                         rf'{SPACE.pattern},?{SPACE.pattern}){{0,32}}+\}}')
MAX_KEY = 100
MAX_SCALAR = 6 * MAX_TEXT + 2  # a 1,000,000-character string written with \u escapes
MAX_MESSAGE = 4 * MAX_TEXT  # characters of JSON for one message
MAX_PICTURE = 4 * attachments.MAX_BYTES // 3 + 1000  # one picture, in base64


class Pieces:
    """A JSON text read one small piece at a time, from `at` on."""

    def __init__(self, text):
        self.text, self.at = text, 0
        self.decoder = json.JSONDecoder()

    def peek(self):
        self.at = SPACE.match(self.text, self.at).end()
        return self.text[self.at:self.at + 1]

    def take(self, char, problem):
        if self.peek() != char:
            raise NotAnExport(problem)
        self.at += 1

    def value(self, pattern, limit, problem):
        """The value at `at`, if `pattern` finds it within `limit` characters."""
        self.peek()
        found = pattern.match(self.text, self.at, self.at + limit)
        try:
            value, end = self.decoder.raw_decode(self.text, self.at) if found else (None, -1)
        except ValueError:
            end = -1
        if not found or end != found.end():
            raise NotAnExport(problem)
        self.at = end
        return value

    def items(self, problem):
        """Step through an array: yield at each item for the caller to read."""
        self.take("[", problem)
        if self.peek() == "]":
            self.at += 1
            return
        while True:
            yield
            if self.after_item("]", problem):
                return

    def members(self, problem):
        """Step through an object: yield each key, with `at` on its value."""
        self.take("{", problem)
        if self.peek() == "}":
            self.at += 1
            return
        while True:
            key = self.value(KEY, MAX_KEY, problem)
            self.take(":", problem)
            yield key
            if self.after_item("}", problem):
                return

    def after_item(self, closing, problem):
        """Past the comma after an item (False), or the closing bracket (True)."""
        separator = self.peek()
        if separator not in (",", closing):
            raise NotAnExport(problem)
        self.at += 1
        return separator == closing

    def end(self, problem):
        if self.peek():
            raise NotAnExport(problem)


def read_export(text, pause):
    """The checked (fields, messages) of each conversation in an export."""
    pieces = Pieces(text)
    header, conversations = {}, None
    for key in pieces.members(NOT_AN_EXPORT):
        if key == "conversations":
            conversations = [read_conversation(pieces, pause) for _ in pieces.items(NOT_AN_EXPORT)]
        else:
            header[key] = pieces.value(ONE_SCALAR, MAX_SCALAR, NOT_AN_EXPORT)
    pieces.end(BAD_JSON)
    if header.get("format") != FORMAT or conversations is None:
        raise NotAnExport(NOT_AN_EXPORT)
    return conversations


def read_message(pieces, pause):
    """A message's fields and its pictures (flat objects, the picture in base64). Most
    messages have none: a small flat object, taken by the C decoder at once."""
    start = pieces.at
    try:
        return pieces.value(FLAT_OBJECT, MAX_MESSAGE, BAD_MESSAGE), []
    except NotAnExport:
        pieces.at = start
    data, pictures = {}, []
    for key in pieces.members(BAD_MESSAGE):
        if key == "pictures":
            for _ in pieces.items(BAD_MESSAGE):
                pictures.append(pieces.value(FLAT_OBJECT, MAX_PICTURE, BAD_MESSAGE))
                pause()
        else:
            data[key] = pieces.value(ONE_SCALAR, MAX_SCALAR, BAD_MESSAGE)
    return data, pictures


def read_conversation(pieces, pause):
    data, messages = {}, None
    for key in pieces.members(BAD_CONVERSATION):
        if key == "messages":
            messages = []
            for _ in pieces.items(BAD_CONVERSATION):
                data_of_message, pictures = read_message(pieces, pause)
                # A version 1 file holds one path: each message follows the one before it.
                previous = messages[-1][0] if messages else None
                messages.append((*checked_message(data_of_message, f"#{len(messages)}", previous),
                                 checked_pictures(pictures)))
                pause()
        else:
            data[key] = pieces.value(ONE_SCALAR, MAX_SCALAR, BAD_CONVERSATION)
        pause()
    if messages is None:
        raise NotAnExport(BAD_CONVERSATION)
    return checked_conversation(data), messages


def existing_conversation(export_id):
    """The conversation an export calls `export_id`, if it is here (imported or exported before)."""
    return Conversation.get_or_none(Conversation.export_id == export_id) if export_id else None


def is_newer(imported, saved):
    return imported is not None and imported.replace(tzinfo=None) > saved.replace(tzinfo=None)


def checked_conversation(data):
    fields = {name: parsed(name, data[name]) for name in CONVERSATION_FIELDS if data.get(name) is not None}
    if "title" in fields:
        fields["title"] = one_line_title(fields["title"]) or gettext("新对话")
    if fields.get("provider", "dashscope") not in provider_settings.PROVIDERS:
        raise field_problem("provider")
    if not is_model_id(fields.get("model", "")):
        raise field_problem("model")
    return fields


def checked_message(data, number, previous):
    """(the file's id of the message, of its parent, our row of it). A version 1 file has no
    ids: `number` names the message and `previous` is its parent."""
    old_id, old_parent = (data.get("id"), data.get("parent_id")) if "id" in data else (number, previous)
    if data.get("role") not in ROLES or not all(
            isinstance(value, (int, str, type(None))) and not isinstance(value, bool) for value in (old_id, old_parent)):
        raise NotAnExport("bad_message_fields")
    fields = {name: parsed(name, data[name]) for name in MESSAGE_FIELDS if data.get(name) is not None}
    if fields.get("provider", "") not in ("", *provider_settings.PROVIDERS):
        raise field_problem("provider")
    if not is_model_id(fields.get("model", "")):
        raise field_problem("model")
    if fields.get("status") not in STATUSES:
        fields["status"] = Message.INTERRUPTED if fields["role"] == "assistant" else Message.DONE
    return old_id, old_parent, {"created_at": now(), **fields}


def is_model_id(value):
    return value == "" or bool(MODEL_ID.match(value))


def field_problem(name):
    return NotAnExport("bad_field", field=name)


def save_picture(data, message):
    try:
        attachments.save_picture(data, message=message)
    except attachments.BadPicture as exc:
        raise NotAnExport(exc.code, **exc.values) from None


def checked_pictures(pictures):
    """The bytes of a message's exported pictures."""
    try:
        return [base64.b64decode(picture["data"], validate=True) for picture in pictures[:attachments.MAX_PICTURES]]
    except (TypeError, KeyError, ValueError):
        raise NotAnExport("bad_picture") from None


def parsed(name, value):
    try:
        if name.endswith("_at"):
            return local_time(datetime.datetime.fromisoformat(value))
        if name.endswith("_tokens"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
                raise ValueError(name)
            return value
        if name == "cost":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
                raise ValueError(name)
            return float(value)
        if name in ("thinking", "is_pinned", "is_excluded", "is_usage_estimate", "is_chosen"):
            return bool(value)
        if not isinstance(value, str) or len(value) > (64 if name == "export_id" else MAX_TEXT):
            raise ValueError(name)
        return value
    except (TypeError, ValueError, OverflowError):
        raise field_problem(name) from None


def local_time(moment):
    """Times are kept without a zone, in local time, as Moyan writes them."""
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment
