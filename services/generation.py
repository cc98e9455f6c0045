"""Generating an answer on the server, apart from any browser connection.

A `Generation` runs in its own thread (a greenlet under gunicorn's gevent worker),
reads the upstream stream and keeps the text in memory; every browser that attaches
gets the text so far, then each new piece. One saver thread writes the text of every
running answer once a second, in one transaction, so a crash loses at most the last
second, and whatever happens the message ends with a final status: done, stopped,
error or interrupted. With several server processes (REDIS_URL), the pieces also go
through Redis (services/relay.py), so a browser on any process can attach and stop.
"""
import logging
import threading
import time

from models import Conversation, Message, connection, db
from providers.errors import ProviderError
from services.relay import RedisRelay

log = logging.getLogger(__name__)

SAVE_INTERVAL = 1.0
FINAL_SAVE_ATTEMPTS = 4  # over about 3.5 s
KEEPALIVE_INTERVAL = 15.0
TITLE_INSTRUCTION = "你是对话标题生成器。用不超过 12 个字概括用户的问题，只输出标题本身，不要引号和标点。"

_running = {}
_running_lock = threading.Lock()
_saver = None  # the thread saving running answers, while there are any
_relay = None  # a RedisRelay when answers are shared between processes


def configure(redis_url):
    global _relay
    _relay = RedisRelay(redis_url, running=running_ids, stop=stop) if redis_url else None


class Generation:
    def __init__(self, message_id):
        self.message_id = message_id
        self.content = ""
        self.reasoning = ""
        self.pieces = []  # (kind, text) in arrival order, for attached listeners
        self.saved_pieces = 0  # how many of them the database has
        self.is_finishing = False  # a stop or the end has claimed the final save
        self.is_finished = False  # ... and it is saved
        self.changed = threading.Condition()

    def add(self, kind, text):
        text = text.replace("\x00", "")  # no database keeps it (PostgreSQL refuses it)
        with self.changed:
            if self.is_finishing:
                return
            if kind == "content":
                self.content += text
            else:
                self.reasoning += text
            self.pieces.append((kind, text))
            self.changed.notify_all()
        if _relay is not None:
            _relay.publish(self.message_id, kind, text)

    def attach(self):
        """Yield ("snapshot", (content, reasoning)) once, then ("content" | "reasoning", text)
        pieces as they come and ("tick", None) when idle, until the generation is finished."""
        with self.changed:
            cursor = len(self.pieces)
            snapshot = (self.content, self.reasoning)
        yield "snapshot", snapshot
        while True:
            with self.changed:
                if cursor == len(self.pieces) and not self.is_finished:
                    self.changed.wait(KEEPALIVE_INTERVAL)
                new, cursor = self.pieces[cursor:], len(self.pieces)
                is_finished = self.is_finished
            yield from new
            if is_finished:
                return
            if not new:
                yield "tick", None

    def finish(self, status, error="", usage=None):
        """Save the final text and status, then tell listeners; only the first call counts."""
        with self.changed:
            if self.is_finishing:
                return False
            self.is_finishing = True
            content, reasoning = self.content, self.reasoning
        fields = {"content": content, "reasoning": reasoning, "status": status, "error": error}
        if usage:
            fields.update(prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"),
                          total_tokens=usage.get("total_tokens"))
        try:
            self.save_final(fields)
        finally:  # whatever happened, listeners must not wait for ever
            with _running_lock:
                _running.pop(self.message_id, None)
            if _relay is not None:
                _relay.end(self.message_id)
            with self.changed:
                self.is_finished = True  # only now: listeners read the saved row when they see it
                self.changed.notify_all()
        return True

    def save_final(self, fields):
        """The last save, retried: the database may be briefly out of reach or busy."""
        for attempt in range(FINAL_SAVE_ATTEMPTS):
            try:
                with connection():
                    Message.update(**fields).where(Message.id == self.message_id).execute()
                return
            except Exception:
                if attempt == FINAL_SAVE_ATTEMPTS - 1:
                    log.exception("answer %s: the final save failed", self.message_id)
                    raise
                time.sleep(0.5 * 2 ** attempt)

    def stop(self):
        """Keep what came so far. The thread sees it at the next piece and closes the
        upstream response itself (closing it from here would race with its read)."""
        self.finish(Message.STOPPED)

    def save_progress(self):
        """Write the text so far, if it grew since the last save (the caller holds a connection)."""
        with self.changed:
            count, content, reasoning = len(self.pieces), self.content, self.reasoning
        if count == self.saved_pieces:
            return
        (Message.update(content=content, reasoning=reasoning)
         .where((Message.id == self.message_id) & (Message.status == Message.STREAMING))
         .execute())
        self.saved_pieces = count

    def run(self, client, model, prompt, thinking, retitle=None):
        """Stream the answer; `retitle` is (conversation id, its placeholder title) when
        this is the conversation's first answer and it deserves a real title."""
        usage = None
        try:
            for kind, value in client.stream_chat(model, prompt, thinking=thinking):
                if self.is_finishing:
                    return
                if kind == "usage":
                    usage = value
                    continue
                self.add(kind, value)
        except Exception as exc:
            if self.is_finishing:
                return  # stopped: closing the response broke the read
            if not isinstance(exc, ProviderError):
                log.exception("generation %s crashed", self.message_id)
                exc = ProviderError("crash")
            log.warning("generation %s failed: %s (%s)", self.message_id,
                        exc.__class__.__name__, exc.detail)
            # Saved in the source language (this thread has no request, hence no reader's
            # language); partials/message.html shows it through the `translated` filter.
            self.finish(Message.ERROR, str(exc.user_message))
            return
        if retitle:
            name_conversation(client, model, prompt[-1]["content"], *retitle)
        self.finish(Message.DONE, usage=usage)


def save_running():
    """Write the text so far of every running answer: one connection, one transaction."""
    with _running_lock:
        generations = list(_running.values())
    with connection(), db.atomic():
        for generation in generations:
            generation.save_progress()


def keep_saving():
    global _saver
    while True:
        time.sleep(SAVE_INTERVAL)
        with _running_lock:
            if not _running:
                _saver = None
                return
        try:
            save_running()
        except Exception:
            log.exception("saving running answers failed")


def start(message, client, prompt, thinking=False, retitle=None):
    """Start generating `message` (an assistant message in status streaming)."""
    global _saver
    generation = Generation(message.id)
    with _running_lock:
        _running[message.id] = generation
        if _relay is not None:
            _relay.renew([message.id])
            _relay.keep_alive()
        if _saver is None:
            _saver = threading.Thread(target=keep_saving, name="answer-saver", daemon=True)
            _saver.start()
    thread = threading.Thread(target=generation.run, args=(client, message.model, prompt, thinking, retitle),
                              name=f"generation-{message.id}", daemon=True)
    thread.start()
    return generation


def name_conversation(client, model, question, conversation_id, placeholder):
    """Replace the placeholder title (the first words) with a short one from the model,
    unless the person renamed the conversation meanwhile. Best effort: on any failure
    the first words stay."""
    try:
        answer = client.complete(model, [{"role": "system", "content": TITLE_INSTRUCTION},
                                         {"role": "user", "content": question[:500]}])
    except ProviderError as exc:
        log.info("no title for conversation %s: %s", conversation_id, exc.__class__.__name__)
        return
    title = (answer.strip().splitlines() or [""])[0].strip(" \"'“”「」《》#*`。.！!？?：:")[:30]
    if title:
        with connection():
            (Conversation.update(title=title)
             .where((Conversation.id == conversation_id) & (Conversation.title == placeholder)).execute())


def running(message_id):
    with _running_lock:
        return _running.get(message_id)


def running_ids():
    with _running_lock:
        return list(_running)


def attach(message_id):
    """The pieces of the answer, as `Generation.attach` yields them, from this process or
    through Redis from another; None when nothing generates it."""
    generation = running(message_id)
    if generation is not None:
        return generation.attach()
    if _relay is not None and _relay.is_alive(message_id):
        return _relay.attach(message_id)
    return None


def stop(message_id, wait=0):
    """Stop the answer, keeping its text, wherever it is generated. When another process
    generates it, wait up to `wait` seconds for that process to save it."""
    generation = running(message_id)
    if generation is not None:
        generation.stop()
    elif _relay is not None and _relay.is_alive(message_id):
        _relay.request_stop(message_id)
        if wait:
            _relay.wait_until_done(message_id, wait)


def interrupt_orphans():
    """At start-up: answers left streaming that no process generates any more."""
    if _relay is None:
        Message.mark_interrupted()
        return
    streaming = Message.select(Message.id).where(Message.status == Message.STREAMING)
    orphans = [message.id for message in streaming if not _relay.is_alive(message.id)]
    if orphans:
        Message.mark_interrupted(*orphans)


def prompt_for(message, system_prompt):
    """The messages sent upstream for the assistant `message`: everything before it."""
    prompt = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    for earlier in Message.history_before(message):
        if earlier.content or earlier.role == "user":
            prompt.append({"role": earlier.role, "content": earlier.content})
    return prompt
