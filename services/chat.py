"""Conversations: what a person sends, checked; answers started or painted; versions and
branches. Each function takes plain values and returns what the view renders, with a sentence
per wrong field ({} when all is well) where it checks input."""
import random

from flask import current_app
from flask_babel import format_number, gettext

from db import database
from models import Attachment, Conversation, ImageTask, Message
from providers import MODEL_ID
from services import attachments, generation, vision
from services import settings as provider_settings

MAX_TEXT = 100_000
MAX_SYSTEM_PROMPT = 20_000
MAX_TITLE = 100
STOP_WAIT = 5  # seconds a stop waits for another process to save the stopped answer


def generations():
    return current_app.extensions["generations"]


def title_from(text):
    """The first words of a message, on one line and without Markdown marks."""
    words = " ".join(text.replace("`", "").replace("#", "").split())
    return words[:30] or gettext("新对话")


def read_options(form):
    """The conversation options in `form`."""
    options = {"provider": form.get("provider", "dashscope"), "model": form.get("model", "").strip(),
               "system_prompt": form.get("system_prompt", ""), "thinking": form.get("thinking") == "on"}
    errors = {}
    if options["provider"] not in provider_settings.PROVIDERS:
        errors["provider"] = gettext("未知的模型服务。")
    if options["model"] and not MODEL_ID.match(options["model"]):
        errors["model"] = gettext("模型名称只能包含字母、数字和 . _ : / @ + -，不超过 128 个字符。")
    if len(options["system_prompt"]) > MAX_SYSTEM_PROMPT:
        errors["system_prompt"] = gettext("系统提示词太长，请不超过 %(limit)s 字。",
                                          limit=format_number(MAX_SYSTEM_PROMPT))
    return options, errors


def read_message(form, picture_ids):
    """What the composer sent: text, pictures, whether to paint it, the conversation options."""
    text = form.get("text", "").strip()
    is_painting = form.get("paint") == "on"
    pictures = Attachment.unsent(picture_ids)
    errors = {}
    if not text and not pictures:
        errors["text"] = gettext("消息不能为空。")
    elif len(text) > MAX_TEXT:
        errors["text"] = gettext("消息太长了（%(length)s 字），请不超过 %(limit)s 字。",
                                 length=format_number(len(text)), limit=format_number(MAX_TEXT))
    elif is_painting and len(text) > ImageTask.MAX_PROMPT:
        errors["text"] = gettext("画图的描述最多 %(limit)s 字。", limit=ImageTask.MAX_PROMPT)
    options, option_errors = read_options(form)
    message = {"text": text, "pictures": pictures, "is_painting": is_painting, "options": options}
    return message, {**errors, **option_errors}


def send(conversation, message):
    """Post `message` (from read_message) to `conversation`, or to a new one when None; return
    the conversation, the question and its answer (being written, or a painting on its way)."""
    text, options = message["text"], message["options"]
    with database.atomic():
        if conversation:
            conversation.touch(**options)
        else:
            conversation = Conversation.create(title=title_from(text), **options)
        question = Message.append(conversation, role="user", content=text)
        attach(question, message["pictures"])
    answer = paint_answer(conversation, text) if message["is_painting"] else start_answer(conversation)
    return conversation, question, answer


def save_options(conversation, form):
    options, errors = read_options(form)
    if not errors:
        Conversation.update(**options).where(Conversation.id == conversation.id).execute()
    return errors


def rename(conversation, title):
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        return {"title": gettext("标题不能为空，且不超过 100 个字。")}
    conversation.title = title
    conversation.save()
    return {}


def toggle_pin(conversation):
    Conversation.update(is_pinned=not conversation.is_pinned).where(Conversation.id == conversation.id).execute()


def delete(conversation):
    for message in list(conversation.message_set.where(Message.status == Message.STREAMING)):
        generations().stop(message.id)
    conversation.delete_instance(recursive=True)


def stop(message):
    generations().stop(message.id, wait=STOP_WAIT)


def toggle_context(message):
    """Leave the message out of later requests, or put it back."""
    Message.update(is_excluded=not message.is_excluded).where(Message.id == message.id).execute()


def other_provider(name):
    """(name, label) of the provider a conversation on `name` could try instead."""
    other = next(p for p in provider_settings.PROVIDERS if p != name)
    return other, provider_settings.PROVIDERS[other]


def resend_elsewhere(message):
    """Send a refused question again, as a new message, to the conversation's other provider
    (its default model); the refused one stays marked and out of the context. Returns the
    conversation, the new question and its answer."""
    if message.role != "user":
        return None, {"message": gettext("只能重新发送自己发送的消息。")}
    conversation = message.conversation
    provider, _ = other_provider(conversation.provider)
    with database.atomic():
        Conversation.update(provider=provider, model="").where(Conversation.id == conversation.id).execute()
        conversation = Conversation.get_by_id(conversation.id)
        conversation.touch()
        question = Message.append(conversation, role="user", content=message.content)
    return (conversation, question, start_answer(conversation)), {}


def regenerate(message):
    """A new version of the answer `message`, written in its place."""
    if message.role != "assistant":
        return {"message": gettext("只能重新生成模型的回答。")}
    generations().stop(message.id)
    start_answer(message.conversation, version_of=message)
    return {}


def edit(message, text):
    """Ask a changed question: a new version of it, answered again. The old question and
    what followed it stay reachable as the other branch."""
    text = text.strip()
    if message.role != "user":
        return {"message": gettext("只能修改自己发送的消息。")}
    if not text or len(text) > MAX_TEXT:
        return {"text": gettext("消息不能为空，且不超过 %(limit)s 字。", limit=format_number(MAX_TEXT))}
    conversation = message.conversation
    later = (Message.conversation == conversation) & (Message.id > message.id)
    for answer in list(Message.select().where(later & (Message.status == Message.STREAMING))):
        generations().stop(answer.id)
    with database.atomic():
        Message.add_version(message, role="user", content=text)
    start_answer(conversation)
    return {}


def start_answer(conversation, version_of=None):
    """Create the assistant message for the end of `conversation` (or a new version of the
    answer `version_of`) and start generating it."""
    settings = provider_settings.load(conversation.provider)
    model = conversation.model or settings.text_model
    fields = {"role": "assistant", "status": Message.STREAMING, "provider": conversation.provider, "model": model}
    answer = Message.add_version(version_of, **fields) if version_of else Message.append(conversation, **fields)
    prompt = generation.prompt_for(answer, conversation.system_prompt, provider_settings.history_pictures())
    choose_vision_model(answer, settings, generation.has_pictures(prompt))
    is_first_answer = [m["role"] for m in prompt if m["role"] != "system"] == ["user"]
    retitle = (conversation.id, conversation.title) if is_first_answer else None
    generations().start(answer, provider_settings.client(conversation.provider, settings), prompt,
                        thinking=conversation.thinking, retitle=retitle)
    return answer


def choose_vision_model(answer, settings, has_pictures):
    """Pictures go to a model that can see them: the conversation's, else the default vision model."""
    model = vision.answering_model(settings, answer.model, has_pictures)
    if model != answer.model:
        answer.model, answer.is_vision_fallback = model, True
        answer.save(only=[Message.model, Message.is_vision_fallback])


def paint_answer(conversation, prompt):
    """画图 in the chat: the message goes to the default image model of the conversation's
    provider; the answer is the task's card, followed by the painter like on /images."""
    settings = provider_settings.load(conversation.provider)
    task = ImageTask.create(provider=conversation.provider, model=settings.image_model, prompt=prompt,
                            seed=random.randint(0, ImageTask.MAX_SEED))
    answer = Message.append(conversation, role="assistant", provider=task.provider,
                            model=task.model, image_task_id=task.id)
    current_app.extensions["painter"].submit_waiting()
    return answer


def attach(message, pictures):
    ids = [picture.id for picture in pictures]
    if ids:
        Attachment.update(message=message).where(Attachment.id.in_(ids)).execute()


def save_pictures(files, attached):
    """Pictures chosen, pasted or dropped in the composer (`attached` are there already):
    checked and kept, not yet sent."""
    uploads = [u for u in files if u.filename or u.content_length]
    if attached + len(uploads) > attachments.MAX_PICTURES:
        return [], {"pictures": gettext("一条消息最多附 %(count)s 张图片。", count=attachments.MAX_PICTURES)}
    saved = []
    try:
        for upload in uploads:
            saved.append(attachments.save_picture(attachments.read_upload(upload), upload.filename))
    except attachments.BadPicture as exc:
        return [], {"pictures": str(exc)}
    return saved, {}
