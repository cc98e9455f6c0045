"""The chat page: conversations in the sidebar, messages, streamed answers."""
import functools
from types import SimpleNamespace

from flask import Blueprint, Response, render_template, request, stream_with_context, url_for
from flask_htmx import make_response
from markupsafe import Markup

from db import database
from models import Conversation, Image, Message
from services import attachments, chat, sse
from services import settings as provider_settings
from views import alert, first_error, get_or_404, htmx, language, page_or_fragment, to_id

bp = Blueprint("chat", __name__)
bp.add_app_template_global(chat.other_provider)

SIDEBAR_PAGE = 50  # conversations per sidebar page; more load as the list scrolls


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
    errors = chat.rename(conversation, request.form.get("title", ""))
    if errors:
        return alert(first_error(errors))
    return render_template("partials/conversation_item.html", c=conversation)


@bp.post("/c/<int:conversation_id>/pin")
def pin(conversation_id):
    chat.toggle_pin(get_or_404(Conversation, conversation_id))
    return render_template("partials/conversation_list.html", **sidebar())


@bp.delete("/c/<int:conversation_id>")
def delete(conversation_id):
    chat.delete(get_or_404(Conversation, conversation_id))
    is_open = (htmx.current_url or "").rstrip("/").endswith(f"/c/{conversation_id}")
    return make_response("", redirect=url_for("chat.index") if is_open else None)


@bp.post("/c/<int:conversation_id>/options")
def save_options(conversation_id):
    errors = chat.save_options(get_or_404(Conversation, conversation_id), request.form)
    if errors:
        return alert(first_error(errors))
    return "", 204


@bp.post("/send")
def send():
    message, errors = chat.read_message(request.form, picture_ids())
    if errors:
        return alert(first_error(errors))
    conversation_id = request.form.get("conversation_id", "")
    is_new = not conversation_id
    conversation, question, answer = chat.send(None if is_new else get_or_404(Conversation, conversation_id), message)
    context = {"conversation": conversation}
    if is_new:  # the options bar now belongs to the new conversation
        context.update(options_context())
    elif not conversation.is_pinned:  # it moves up the sidebar: all of it again
        context.update(sidebar())
    html = render_template("partials/sent.html", messages=[question, answer], is_new=is_new, **context)
    return make_response(html, push_url=url_for("chat.show", conversation_id=conversation.id) if is_new else None)


@bp.get("/m/<int:message_id>/stream")
def stream(message_id):
    """Follow an answer: its text so far, then what comes, then `done`.

    Only ever follows; a generation is started by send, regenerate or edit, so the
    SSE extension reconnecting can never start another one.
    """
    generations = chat.generations()
    message = generations.settle(get_or_404(Message, message_id))
    pieces = generations.follow(message_id) if message.is_streaming else None
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
            final = generations.settle(Message.get_by_id(message_id))
            yield sse.frame(sse.DONE, render_template("partials/message.html", m=final)
                            + refused_question(final) + str(sidebar_item(final.conversation, oob=True)))

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.post("/m/<int:message_id>/stop")
def stop(message_id):
    chat.stop(get_or_404(Message, message_id))
    return render_template("partials/message.html", m=Message.get_by_id(message_id))


def refused_question(answer):
    """The question of an answer refused by input moderation, marked, to swap in out of band."""
    if answer.moderated != "input":
        return ""
    question = Message.question_of(answer.id)
    return render_template("partials/message.html", m=question, oob=True) if question else ""


@bp.post("/m/<int:message_id>/context")
def toggle_context(message_id):
    """Leave the message out of later requests, or put it back."""
    message = get_or_404(Message, message_id)
    chat.toggle_context(message)
    return render_template("partials/message.html", m=Message.get_by_id(message.id))


@bp.post("/m/<int:message_id>/resend")
def resend_elsewhere(message_id):
    sent, errors = chat.resend_elsewhere(get_or_404(Message, message_id))
    if errors:
        return alert(first_error(errors))
    conversation, question, answer = sent
    return render_template("partials/sent.html", messages=[question, answer], conversation=conversation,
                           is_new=False, resent=True, **options_context(), **sidebar())


@bp.post("/m/<int:message_id>/regenerate")
def regenerate(message_id):
    message = get_or_404(Message, message_id)
    errors = chat.regenerate(message)
    if errors:
        return alert(first_error(errors))
    return render_template("partials/messages.html", conversation=message.conversation)


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
    message = get_or_404(Message, message_id)
    errors = chat.edit(message, request.form.get("text", ""))
    if errors:
        return alert(first_error(errors))
    return render_template("partials/messages.html", conversation=message.conversation)


def picture_ids():
    """The ids of the pictures attached in the composer (at most MAX_PICTURES)."""
    ids = [to_id(value) for value in request.form.getlist("attachment")]
    return [i for i in ids if i][:attachments.MAX_PICTURES]


@bp.post("/attachments")
def upload_pictures():
    pictures, errors = chat.save_pictures(request.files.getlist("pictures"), len(picture_ids()))
    if errors:
        return alert(first_error(errors))
    return render_template("partials/attachment_chips.html", pictures=pictures)
