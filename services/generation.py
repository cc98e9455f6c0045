"""Generating answers on the server, apart from any browser connection.

`Generations` (one per app, in `app.extensions["generations"]`) owns the answers this
process generates, the saver that writes their text once a second, and the relay that
shares them with other processes (services/relay.py: nothing to share on one process,
Redis with several).

Each `Answer` runs in its own thread (a greenlet under gunicorn's gevent worker), reads
the upstream stream and keeps every piece, already encoded as an SSE event, in memory.
A browser that follows it gets the text so far, then everything new at each wake-up in
one write. Whatever happens, the message ends with a final status: done, stopped, error
or interrupted, and only then do its listeners get `done`.
"""
import logging
import threading
import time

from db import close_db, connection, database
from models import Attachment, Conversation, Message
from providers.base import as_text
from providers.errors import InputModerated, OutputModerated, ProviderError
from providers.retry import retried
from services import attachments, costs, sse
from services.failures import Failure
from services.markdown import render as render_markdown
from services.relay import LocalRelay, RedisRelay

log = logging.getLogger(__name__)

SAVE_INTERVAL = 1.0
FINAL_SAVE_ATTEMPTS = 4  # over about 3.5 s
KEEPALIVE_INTERVAL = 15.0
TITLE_INSTRUCTION = "你是对话标题生成器。用不超过 12 个字概括用户的问题，只输出标题本身，不要引号和标点。"
MAX_TITLE = 30


class Answer:
    """One answer generated in this process."""

    def __init__(self, owner, message_id):
        self.owner = owner
        self.message_id = message_id
        self.pieces = []  # (kind, text, encoded event) in arrival order
        self.saved_pieces = 0  # how many of them the database has
        self.listeners = ()  # one Event per browser following; replaced, never changed
        self.is_finishing = False  # a stop or the end has claimed the final save
        self.is_finished = False  # ... and it is saved
        self.lock = threading.Lock()
        self.prompt = []  # what was sent, to estimate the usage when none comes
        self.usage = None  # the provider's usage, once it came

    def add(self, kind, text):
        text = text.replace("\x00", "")  # no database keeps it (PostgreSQL refuses it)
        if not text:
            return
        with self.lock:
            if self.is_finishing:
                return
            self.pieces.append((kind, text, sse.piece(kind, text)))
        for listener in self.listeners:
            if not listener.is_set():
                listener.set()
        self.owner.relay.publish(self.message_id, kind, text)

    def text(self, count=None):
        """(content, reasoning) of the first `count` pieces (all by default)."""
        pieces = self.pieces[:count]
        return ("".join(text for kind, text, _ in pieces if kind == sse.CONTENT),
                "".join(text for kind, text, _ in pieces if kind == sse.REASONING))

    def follow(self):
        """Yield ("snapshot", (content, reasoning)) once, then ("frames", bytes) with every
        event that came since the last wake-up, or ("tick", None) when woken with nothing
        new (`wake()`), until the answer is saved for good."""
        listener = threading.Event()
        with self.lock:
            cursor = len(self.pieces)
            self.listeners += (listener,)
        try:
            yield sse.SNAPSHOT, self.text(cursor)
            while True:
                listener.wait()  # woken by a piece, the end, or the saver's keep-alive tick
                listener.clear()
                is_finished = self.is_finished  # before reading: nothing is added after it
                new = self.pieces[cursor:]
                cursor += len(new)
                if new:
                    yield "frames", b"".join(encoded for _, _, encoded in new)
                elif not is_finished:
                    yield "tick", None
                if is_finished:
                    return
        finally:
            with self.lock:
                self.listeners = tuple(other for other in self.listeners if other is not listener)

    def wake(self):
        for listener in self.listeners:
            listener.set()

    def finish(self, status, error="", usage=None, moderated=""):
        """Save the final text and status, then tell listeners; only the first call counts.
        `moderated` says which way moderation refused it ("input" or "output")."""
        with self.lock:
            if self.is_finishing:
                return False
            self.is_finishing = True
        self.usage = usage if usage is not None else self.usage
        content, reasoning = self.text()
        fields = {"content": content, "reasoning": reasoning, "status": status, "error": error,
                  "content_html": render_markdown(content), **token_counts(usage),
                  **moderation_marks(moderated)}
        try:
            self.save_final(fields)
        finally:  # whatever happened, listeners must not wait for ever
            self.owner.forget(self)
            self.is_finished = True  # only now: listeners read the saved row when they see it
            self.wake()
        return True

    def save_final(self, fields):
        """The last save, retried: the database may be briefly out of reach or busy."""
        def save():
            with connection(), database.atomic():
                Message.update(**fields).where(Message.id == self.message_id).execute()
                if fields.get("moderated") == "input":
                    Message.mark_refused_question(self.message_id)
                self.record_usage()
        try:
            retried(save, FINAL_SAVE_ATTEMPTS)
        except Exception:
            log.exception("answer %s: the final save failed", self.message_id)
            raise

    def record_usage(self):
        """Append the answer to the usage ledger and keep its cost (and an estimate of its
        tokens when no usage came) on the message."""
        costs.record_answer(self.message_id, self.usage, token_counts(self.usage), self.prompt)

    def stop(self):
        """Keep what came so far. The thread sees it at the next piece and closes the
        upstream response itself (closing it from here would race with its read)."""
        self.finish(Message.STOPPED)

    def save_progress(self):
        """Write the text so far, if it grew since the last save (the caller holds a connection)."""
        count = len(self.pieces)
        if count == self.saved_pieces:
            return
        content, reasoning = self.text(count)
        (Message.update(content=content, reasoning=reasoning)
         .where((Message.id == self.message_id) & (Message.status == Message.STREAMING))
         .execute())
        self.saved_pieces = count

    def run(self, client, model, prompt, thinking, retitle=None):
        """Stream the answer; `retitle` is (conversation id, its placeholder title) when
        this is the conversation's first answer and it deserves a real title. Whatever
        goes wrong, the answer ends with a final status."""
        self.prompt = prompt
        try:
            usage = self.receive(client.stream_chat(model, prompt, thinking=thinking))
            if retitle and not self.is_finishing:
                name_conversation(client, model, as_text(prompt[-1]["content"]), *retitle)
            self.finish(Message.DONE, usage=usage)
        except Exception as exc:
            self.fail(exc)
        finally:
            if not self.is_finishing:  # e.g. the thread killed: never leave it streaming
                self.finish(Message.INTERRUPTED, Message.INTERRUPTED_ERROR)
            close_db()  # a connection opened outside connection() goes back to the pool

    def receive(self, pieces):
        """Keep every piece until the stream ends or the answer is stopped; the usage."""
        usage = None
        for kind, value in pieces:
            if self.is_finishing:
                break
            if kind == "usage":
                usage = self.usage = value
            else:
                self.add(kind, value)
        pieces.close()  # closes the upstream response: a stop really stops
        return usage

    def fail(self, exc):
        if self.is_finishing:
            return  # stopped: closing the response broke the read
        if not isinstance(exc, ProviderError):
            log.exception("generation %s crashed", self.message_id)
            exc = ProviderError("crash")
        log.warning("generation %s failed: %s (%s)", self.message_id, exc.__class__.__name__, exc.detail)
        # Saved as a code: this thread has no reader; the page shows it in the reader's language.
        self.finish(Message.ERROR, Failure.of(exc).saved, moderated=moderation_of(exc))


def moderation_of(exc):
    if isinstance(exc, OutputModerated):
        return "output"
    return "input" if isinstance(exc, InputModerated) else ""


def moderation_marks(moderated):
    """An answer cut by output moderation is flagged text itself: kept, shown, never sent again."""
    return {"moderated": moderated, "is_excluded": moderated == "output"} if moderated else {}


def token_counts(usage):
    """The token counts of a provider's `usage`, whatever shape it came in."""
    if not isinstance(usage, dict):
        return {}
    counts = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
            counts[name] = value
    return counts


class Generations:
    """The answers generated in this process, their saver, and the relay to other processes."""

    def __init__(self, redis_url=""):
        self.running = {}  # message id -> Answer
        self.lock = threading.Lock()
        self.saver = None  # the thread saving running answers, while there are any
        self.relay = (RedisRelay(redis_url, running=lambda: list(self.running), stop=self.stop)
                      if redis_url else LocalRelay())

    def start(self, message, client, prompt, thinking=False, retitle=None):
        """Start generating `message` (an assistant message in status streaming)."""
        answer = Answer(self, message.id)
        with self.lock:
            self.running[message.id] = answer
            if self.saver is None:
                self.saver = threading.Thread(target=self.keep_saving, name="answer-saver", daemon=True)
                self.saver.start()
        self.relay.started(message.id)
        threading.Thread(target=answer.run, args=(client, message.model, prompt, thinking, retitle),
                         name=f"generation-{message.id}", daemon=True).start()
        return answer

    def forget(self, answer):
        with self.lock:
            self.running.pop(answer.message_id, None)
        self.relay.ended(answer.message_id)

    def follow(self, message_id):
        """The pieces of the answer, as `Answer.follow` yields them, from this process or
        through the relay from another; None when nothing generates it."""
        answer = self.running.get(message_id)
        return answer.follow() if answer is not None else self.relay.follow(message_id)

    def stop(self, message_id, wait=0):
        """Stop the answer, keeping its text, wherever it is generated. When another process
        generates it, wait up to `wait` seconds for that process to save it."""
        answer = self.running.get(message_id)
        if answer is not None:
            answer.stop()
        elif self.relay.is_alive(message_id):
            self.relay.request_stop(message_id, wait)

    def stop_all(self, seconds=10):
        """Stop every answer of this process and wait (up to `seconds`) for their threads."""
        for answer in list(self.running.values()):
            answer.stop()
        deadline = time.monotonic() + seconds
        for thread in threading.enumerate():
            if thread.name.startswith("generation-"):
                thread.join(max(0, deadline - time.monotonic()))

    def is_generated(self, message_id):
        return message_id in self.running or self.relay.is_alive(message_id)

    def settle(self, message):
        """`message` as it stands, marked interrupted first if it is left streaming with
        nothing generating it any more (its process stopped in the middle)."""
        if message.is_streaming and not self.is_generated(message.id):
            log.warning("answer %s: nothing generates it any more; marked interrupted", message.id)
            if Message.mark_interrupted(message.id):  # only the process that marked it records it
                record_interrupted(message)
            return Message.get_by_id(message.id)
        return message

    def interrupt_orphans(self):
        """At start-up: answers left streaming that no process generates any more."""
        for message in Message.select().where(Message.status == Message.STREAMING):
            self.settle(message)

    def save_running(self):
        """Write the text so far of every running answer: one connection, one transaction."""
        answers = list(self.running.values())
        with connection(), database.atomic():
            for answer in answers:
                answer.save_progress()

    def keep_saving(self):
        """Save every SAVE_INTERVAL; every KEEPALIVE_INTERVAL, also wake every listener, so
        that a quiet stream still sends something (a proxy would close it otherwise)."""
        last_tick = time.monotonic()
        while True:
            time.sleep(SAVE_INTERVAL)
            with self.lock:
                if not self.running:
                    self.saver = None
                    return
            try:
                self.save_running()
            except Exception:
                log.exception("saving running answers failed")
            if time.monotonic() - last_tick >= KEEPALIVE_INTERVAL:
                last_tick = time.monotonic()
                for answer in list(self.running.values()):
                    answer.wake()


def name_conversation(client, model, question, conversation_id, placeholder):
    """Replace the placeholder title (the first words) with a short one from the model,
    unless the person renamed the conversation meanwhile. Best effort: on any failure
    the first words stay. Streamed, without thinking: thinking-only models refuse
    anything else, and the reasoning they send anyway is skipped."""
    messages = [{"role": "system", "content": TITLE_INSTRUCTION}, {"role": "user", "content": question[:500]}]
    answer, usage, pieces = "", None, client.stream_chat(model, messages, thinking=False)
    try:
        for kind, value in pieces:
            if kind == sse.CONTENT:
                answer += value
            elif kind == "usage":
                usage = value
            if len(answer) > 200:
                break
        pieces.close()
    except Exception as exc:  # ProviderError, or anything else: the first words stay
        log.info("no title for conversation %s: %s", conversation_id, exc.__class__.__name__)
        return
    title = (answer.strip().splitlines() or [""])[0].strip(" \"'“”「」《》#*`。.！!？?：:")[:MAX_TITLE]
    with connection():
        costs.record_title(client.name, model, usage, token_counts(usage), conversation_id,
                           (TITLE_INSTRUCTION + question[:500], answer))
        if title:
            (Conversation.update(title=title)
             .where((Conversation.id == conversation_id) & (Conversation.title == placeholder)).execute())


def record_interrupted(message):
    """The usage ledger's estimate for an answer whose process stopped in the middle."""
    prompt = prompt_for(message, message.conversation.system_prompt)
    costs.record_answer(message.id, None, {}, prompt)


def prompt_for(message, system_prompt, picture_limit=0):
    """The messages sent upstream for the assistant `message`: everything before it that
    is not left out of the context, with the latest `picture_limit` pictures."""
    prompt = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    history = [earlier for earlier in Message.history_before(message) if not earlier.is_excluded]
    pictures = pictures_to_send(history, picture_limit)
    for earlier in history:
        if earlier.content or earlier.role == "user":
            prompt.append({"role": earlier.role, "content": content_parts(earlier.content, pictures.get(earlier.id))})
    return prompt


def pictures_to_send(history, limit):
    """message id -> its pictures that go with the request: the newest `limit` of them."""
    by_message = Attachment.of_messages([m.id for m in history if m.role == "user"]) if limit else {}
    kept, count = {}, 0
    for message_id in sorted(by_message, reverse=True):
        pictures = by_message[message_id][:max(0, limit - count)]
        if pictures:
            kept[message_id] = pictures
        count += len(pictures)
    return kept


def content_parts(text, pictures):
    """A message's `content`: its text alone, or the text and then each picture as an
    `image_url` part (OpenRouter recommends the text first)."""
    if not pictures:
        return text
    return ([{"type": "text", "text": text}] if text else []) + [
        {"type": "image_url", "image_url": {"url": attachments.data_url(picture)}} for picture in pictures]


def has_pictures(prompt):
    return any(isinstance(m["content"], list) for m in prompt)
