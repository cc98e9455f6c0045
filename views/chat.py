"""The chat page: conversations in the sidebar, messages, streamed answers."""
import functools
import random
from types import SimpleNamespace

from flask import (Blueprint, Response, current_app, render_template, request, stream_with_context,
                   url_for)
from flask_babel import format_number, gettext
from markupsafe import Markup

from db import database
from models import Attachment, Conversation, Image, ImageTask, Message
from providers import MODEL_ID
from services import attachments, generation, sse, vision
from services import settings as provider_settings
from views import alert, get_or_404, htmx, language, page_or_fragment, to_id
from views.images import MAX_PROMPT as MAX_PAINT_PROMPT
from views.images import MAX_SEED

bp = Blueprint("chat", __name__)

MAX_TEXT = 100_000
MAX_SYSTEM_PROMPT = 20_000
SIDEBAR_PAGE = 50  # conversations per sidebar page; more load as the list scrolls
STOP_WAIT = 5  # seconds a stop waits for another process to save the stopped answer


def sidebar(query="", offset=0):
    """What partials/conversation_list.html needs: one page of the sidebar."""
    return {"conversations": Conversation.latest(query, offset, SIDEBAR_PAGE), "query": query,
            "offset": offset, "page_size": SIDEBAR_PAGE}


@bp.app_template_global()
def sidebar_item(c, oob=False):
    """partials/conversation_item.html for `c`, rendered once for each title, pin and
    language: the sidebar shows the same items on every page and after every message."""
    return rendered_item(language.current(), c.id, c.title, c.is_pinned, oob)


RECENT_MARKER = '<template id="recent-conversations"></template>'


@bp.app_template_global()
def sidebar_items(conversations, offset):
    """A page of sidebar items. On the first, #recent-conversations marks where the unpinned
    ones start: partials/sent.html puts a new conversation there."""
    code, parts, is_marked = language.current(), [], offset != 0
    for c in conversations:
        if not is_marked and not c.is_pinned:
            parts.append(RECENT_MARKER)
            is_marked = True
        parts.append(rendered_item(code, c.id, c.title, c.is_pinned, False))
    if not is_marked:
        parts.append(RECENT_MARKER)
    return Markup("".join(parts))


@functools.lru_cache(maxsize=4096)
def rendered_item(language_code, conversation_id, title, is_pinned, oob):
    item = SimpleNamespace(id=conversation_id, title=title, is_pinned=is_pinned)
    return Markup(render_template("partials/conversation_item.html", c=item, oob=oob))


def generations():
    return current_app.extensions["generations"]


def options_context():
    """What partials/chat_options.html needs besides the conversation."""
    return {"providers": provider_settings.PROVIDERS,
            "defaults": {name: provider_settings.load(name) for name in provider_settings.PROVIDERS},
            "chat_provider": provider_settings.chat_provider()}


def chat_context(conversation=None, query=""):
    return {"conversation": conversation, **sidebar(query), **options_context()}


@bp.get("/")
def index():
    """A new conversation; "就这张图提问" opens it with a gallery picture attached."""
    image_id = to_id(request.args.get("picture"))
    pictures = [attachments.copy_of_image(get_or_404(Image, image_id))] if image_id else []
    return render_template("chat.html", pictures=pictures, **chat_context())


@bp.get("/c/<int:conversation_id>")
def show(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    return page_or_fragment("chat.html", "partials/conversation.html",
                            **chat_context(conversation))


@bp.get("/c/<int:conversation_id>/messages")
def older_messages(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    messages, has_older = conversation.recent_messages(to_id(request.args.get("before")))
    return render_template("partials/message_page.html", conversation=conversation,
                           messages=messages, has_older=has_older)


@bp.get("/conversations")
def search():
    query = request.args.get("q", "").strip()[:200]
    offset = to_id(request.args.get("offset")) or 0
    template = "partials/conversation_page.html" if offset else "partials/conversation_list.html"
    return render_template(template, **sidebar(query, offset))


@bp.post("/c/<int:conversation_id>/title")
def rename(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    title = request.form.get("title", "").strip()
    if not title or len(title) > 100:
        return alert(gettext("标题不能为空，且不超过 100 个字。"))
    conversation.title = title
    conversation.save()
    return render_template("partials/conversation_item.html", c=conversation)


@bp.post("/c/<int:conversation_id>/pin")
def pin(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    Conversation.update(is_pinned=not conversation.is_pinned).where(Conversation.id == conversation.id).execute()
    return render_template("partials/conversation_list.html", **sidebar())


@bp.delete("/c/<int:conversation_id>")
def delete(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    for message in list(conversation.message_set.where(Message.status == Message.STREAMING)):
        generations().stop(message.id)
    conversation.delete_instance(recursive=True)
    is_open = (htmx.current_url or "").rstrip("/").endswith(f"/c/{conversation_id}")
    return "", 200, ({"HX-Redirect": url_for("chat.index")} if is_open else {})


@bp.post("/c/<int:conversation_id>/options")
def save_options(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    options, problem = read_options()
    if problem:
        return alert(problem)
    Conversation.update(**options).where(Conversation.id == conversation.id).execute()
    return "", 204


@bp.post("/send")
def send():
    text = request.form.get("text", "").strip()
    pictures = Attachment.unsent(picture_ids())
    if not text and not pictures:
        return alert(gettext("消息不能为空。"))
    if len(text) > MAX_TEXT:
        return alert(gettext("消息太长了（%(length)s 字），请不超过 %(limit)s 字。",
                             length=format_number(len(text)), limit=format_number(MAX_TEXT)))
    is_painting = request.form.get("paint") == "on"
    if is_painting and len(text) > MAX_PAINT_PROMPT:
        return alert(gettext("画图的描述最多 %(limit)s 字。", limit=MAX_PAINT_PROMPT))
    options, problem = read_options()
    if problem:
        return alert(problem)
    conversation_id = request.form.get("conversation_id", "")
    with database.atomic():
        if conversation_id:
            conversation = get_or_404(Conversation, conversation_id)
            conversation.touch(**options)
        else:
            conversation = Conversation.create(title=title_from(text), **options)
        user_message = Message.append(conversation, role="user", content=text)
        attach(user_message, pictures)
    answer = paint_answer(conversation, text) if is_painting else start_answer(conversation)
    headers = {} if conversation_id else {"HX-Push-Url": url_for("chat.show", conversation_id=conversation.id)}
    context = {"conversation": conversation}
    if not conversation_id:  # the options bar now belongs to the new conversation
        context.update(options_context())
    elif not conversation.is_pinned:  # it moves up the sidebar: all of it again
        context.update(sidebar())
    return render_template("partials/sent.html", messages=[user_message, answer],
                           is_new=not conversation_id, **context), 200, headers


@bp.get("/m/<int:message_id>/stream")
def stream(message_id):
    """Follow an answer: its text so far, then what comes, then `done`.

    Only ever follows; a generation is started by send, regenerate or edit, so the
    SSE extension reconnecting can never start another one.
    """
    message = generations().settle(get_or_404(Message, message_id))
    pieces = generations().follow(message_id) if message.is_streaming else None
    database.close()  # an open stream must not hold a database connection

    def events():
        if pieces is not None:
            for kind, value in pieces:
                if kind == "frames":
                    yield value
                elif kind == sse.SNAPSHOT:
                    yield sse.frame(sse.SNAPSHOT, render_template("partials/answer_text.html", message_id=message_id,
                                                                  content=value[0], reasoning=value[1]))
                else:
                    yield sse.KEEPALIVE
        with database.connection_context():
            final = generations().settle(Message.get_by_id(message_id))
            yield sse.frame(sse.DONE, render_template("partials/message.html", m=final)
                            + refused_question(final) + str(sidebar_item(final.conversation, oob=True)))

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.post("/m/<int:message_id>/stop")
def stop(message_id):
    get_or_404(Message, message_id)
    generations().stop(message_id, wait=STOP_WAIT)
    return render_template("partials/message.html", m=Message.get_by_id(message_id))


def refused_question(answer):
    """The question of an answer refused by input moderation, marked, to swap in out of band."""
    if answer.moderated != "input":
        return ""
    question = Message.question_of(answer.id)
    return render_template("partials/message.html", m=question, oob=True) if question else ""


@bp.app_template_global()
def other_provider(name):
    """(name, label) of the provider a conversation on `name` could try instead."""
    other = next(p for p in provider_settings.PROVIDERS if p != name)
    return other, provider_settings.PROVIDERS[other]


@bp.post("/m/<int:message_id>/context")
def toggle_context(message_id):
    """Leave the message out of later requests, or put it back."""
    message = get_or_404(Message, message_id)
    Message.update(is_excluded=not message.is_excluded).where(Message.id == message.id).execute()
    return render_template("partials/message.html", m=Message.get_by_id(message.id))


@bp.post("/m/<int:message_id>/resend")
def resend_elsewhere(message_id):
    """Send a refused question again, as a new message, to the conversation's other provider
    (its default model); the refused one stays marked and out of the context."""
    message = get_or_404(Message, message_id)
    if message.role != "user":
        return alert(gettext("只能重新发送自己发送的消息。"))
    conversation = message.conversation
    provider, _ = other_provider(conversation.provider)
    with database.atomic():
        Conversation.update(provider=provider, model="").where(Conversation.id == conversation.id).execute()
        conversation = Conversation.get_by_id(conversation.id)
        conversation.touch()
        question = Message.append(conversation, role="user", content=message.content)
    answer = start_answer(conversation)
    return render_template("partials/sent.html", messages=[question, answer], conversation=conversation,
                           is_new=False, resent=True, **options_context(), **sidebar())


@bp.post("/m/<int:message_id>/regenerate")
def regenerate(message_id):
    message = get_or_404(Message, message_id)
    if message.role != "assistant":
        return alert(gettext("只能重新生成模型的回答。"))
    generations().stop(message.id)
    conversation = message.conversation
    start_answer(conversation, version_of=message)
    return render_template("partials/messages.html", conversation=conversation)


@bp.post("/m/<int:message_id>/choose")
def choose(message_id):
    """Show this version of its turn (‹ n / m ›): the visible path, and what later turns
    build on, now runs through it."""
    message = get_or_404(Message, message_id)
    with database.atomic():
        message.choose()
    return render_template("partials/messages.html", conversation=message.conversation)


@bp.get("/m/<int:message_id>/edit")
def edit_form(message_id):
    message = get_or_404(Message, message_id)
    return render_template("partials/message_edit.html", m=message)


@bp.get("/m/<int:message_id>")
def message(message_id):
    return render_template("partials/message.html", m=get_or_404(Message, message_id))


@bp.post("/m/<int:message_id>/edit")
def edit(message_id):
    """Ask a changed question: a new version of it, answered again. The old question and
    what followed it stay reachable as the other branch."""
    message = get_or_404(Message, message_id)
    text = request.form.get("text", "").strip()
    if message.role != "user":
        return alert(gettext("只能修改自己发送的消息。"))
    if not text or len(text) > MAX_TEXT:
        return alert(gettext("消息不能为空，且不超过 %(limit)s 字。", limit=format_number(MAX_TEXT)))
    conversation = message.conversation
    later = (Message.conversation == conversation) & (Message.id > message.id)
    for answer in list(Message.select().where(later & (Message.status == Message.STREAMING))):
        generations().stop(answer.id)
    with database.atomic():
        Message.add_version(message, role="user", content=text)
    start_answer(conversation)
    return render_template("partials/messages.html", conversation=conversation)


def title_from(text):
    """The first words of a message, on one line and without Markdown marks."""
    words = " ".join(text.replace("`", "").replace("#", "").split())
    return words[:30] or gettext("新对话")


def read_options():
    """The conversation options in the form, and a sentence if one is wrong."""
    provider = request.form.get("provider", "dashscope")
    model = request.form.get("model", "").strip()
    system_prompt = request.form.get("system_prompt", "")
    if provider not in provider_settings.PROVIDERS:
        return None, gettext("未知的模型服务。")
    if model and not MODEL_ID.match(model):
        return None, gettext("模型名称只能包含字母、数字和 . _ : / @ + -，不超过 128 个字符。")
    if len(system_prompt) > MAX_SYSTEM_PROMPT:
        return None, gettext("系统提示词太长，请不超过 %(limit)s 字。", limit=format_number(MAX_SYSTEM_PROMPT))
    return {"provider": provider, "model": model, "system_prompt": system_prompt,
            "thinking": request.form.get("thinking") == "on"}, None


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


def picture_ids():
    """The ids of the pictures attached in the composer (at most MAX_PICTURES)."""
    ids = [to_id(value) for value in request.form.getlist("attachment")]
    return [i for i in ids if i][:attachments.MAX_PICTURES]


def attach(message, pictures):
    ids = [picture.id for picture in pictures]
    if ids:
        Attachment.update(message=message).where(Attachment.id.in_(ids)).execute()


@bp.post("/attachments")
def upload_pictures():
    """Pictures chosen, pasted or dropped in the composer: checked and kept, shown as chips."""
    uploads = [u for u in request.files.getlist("pictures") if u.filename or u.content_length]
    if len(picture_ids()) + len(uploads) > attachments.MAX_PICTURES:
        return alert(gettext("一条消息最多附 %(count)s 张图片。", count=attachments.MAX_PICTURES))
    saved = []
    try:
        for upload in uploads:
            saved.append(attachments.save_picture(attachments.read_upload(upload), upload.filename))
    except attachments.BadPicture as exc:
        return alert(str(exc))
    return render_template("partials/attachment_chips.html", pictures=saved)


def paint_answer(conversation, prompt):
    """画图 in the chat: the message goes to the default image model of the conversation's
    provider; the answer is the task's card, followed by the painter like on /images."""
    settings = provider_settings.load(conversation.provider)
    task = ImageTask.create(provider=conversation.provider, model=settings.image_model, prompt=prompt,
                            seed=random.randint(0, MAX_SEED))
    answer = Message.append(conversation, role="assistant", provider=task.provider,
                            model=task.model, image_task_id=task.id)
    current_app.extensions["painter"].submit_waiting()
    return answer
