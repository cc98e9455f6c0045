"""Answers streamed across server processes, through Redis (when REDIS_URL is set).

The process generating an answer appends each piece to a Redis stream,
`moyan:answer:<id>`, ending it with a `done` entry once the final text is saved. A
browser attached to any process reads that stream: every piece so far as the snapshot,
then new ones as they come. While the answer runs, its process renews a short-lived
`…:alive` key once a second; when the key is gone, nothing generates the answer any more
(that process died) and it is marked interrupted. A stop asked of another process sets
`…:stop`, which the generating process sees at its next renewal.

Per process, one sender thread writes the queued pieces of every answer in one round
trip, and one reader thread follows every stream that its browsers listen to in one
XREAD, so Redis sees a few connections per process, not one per browser.
"""
import logging
import threading
import time
import uuid

from services import sse

log = logging.getLogger(__name__)

# An answer whose process has not renewed it for this long is orphaned. Renewed every
# second; the margin is for a process so loaded that its saver runs late.
ALIVE_SECONDS = 15
WAIT_SECONDS = 5  # a listener with nothing new checks this often that the answer is alive
KEEP_SECONDS = 600  # a stream is kept this long after its last renewal, for late attaches
DONE_KEEP_SECONDS = 60
GATHER_SECONDS = 0.01
RENEW_SECONDS = 1


class LocalRelay:
    """One process (no REDIS_URL): every answer is generated where it is followed, so
    there is nothing to share. RedisRelay has the same methods."""

    def started(self, message_id):
        pass

    def publish(self, message_id, kind, text=""):
        pass

    def ended(self, message_id):
        pass

    def is_alive(self, message_id):
        return False

    def request_stop(self, message_id, wait=0):
        pass

    def follow(self, message_id):
        return None


class RedisRelay:
    """`running()` gives the ids of the answers this process generates; `stop(id)` stops
    one of them (asked from another process)."""

    def __init__(self, url, running, stop):
        import redis  # only where REDIS_URL is set: the single-box default never loads it
        self.errors = redis.RedisError
        # A read may block for WAIT_SECONDS (XREAD): the socket must wait longer.
        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                          socket_timeout=WAIT_SECONDS + 10)
        self.reader = StreamReader(self.redis, self.errors)
        self.queue = []  # (message id, kind, text) not yet written
        self.queued = threading.Condition()
        self.sender = None
        self.running, self.stop = running, stop
        self.keeper = None

    @staticmethod
    def key(message_id, suffix=""):
        return f"moyan:answer:{message_id}{suffix}"

    def started(self, message_id):
        """An answer begins here: mark it alive at once, and keep renewing this process's
        answers once a second, in a thread of their own (a process busy with its database
        must not look dead)."""
        self.renew([message_id])
        with self.queued:
            if self.keeper is None:
                self.keeper = threading.Thread(target=self.keep, name="redis-keeper", daemon=True)
                self.keeper.start()

    def keep(self):
        while True:
            time.sleep(RENEW_SECONDS)
            for message_id in self.renew(self.running()):
                self.stop(message_id)

    def publish(self, message_id, kind, text=""):
        """Queue a piece: the sender thread writes all that is queued in one round trip.
        Best effort: with Redis away, the answer goes on and is saved; only listeners on
        other processes miss pieces until its end, which they read from the database."""
        with self.queued:
            self.queue.append((message_id, kind, text))
            if self.sender is None:
                self.sender = threading.Thread(target=self.send, name="redis-sender", daemon=True)
                self.sender.start()
            self.queued.notify()

    def send(self):
        while True:
            with self.queued:
                while not self.queue:
                    self.queued.wait()
            time.sleep(GATHER_SECONDS)  # under load, many pieces share the trip
            with self.queued:
                batch, self.queue = self.queue, []
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    for message_id, kind, text in batch:
                        pipe.xadd(self.key(message_id), {"kind": kind, "text": text})
                        if kind == sse.DONE:  # let the stream go soon
                            pipe.expire(self.key(message_id), DONE_KEEP_SECONDS)
                            pipe.delete(self.key(message_id, ":alive"), self.key(message_id, ":stop"))
                    pipe.execute()
            except self.errors as exc:
                log.warning("%s answer pieces not relayed: %s", len(batch), exc.__class__.__name__)

    def renew(self, message_ids):
        """Mark these answers as generated here for a few more seconds; return the ids
        of those someone asked to stop."""
        if not message_ids:
            return []
        try:
            return self._renew(message_ids)
        except self.errors as exc:
            log.warning("answers not renewed: %s", exc.__class__.__name__)
            return []

    def _renew(self, message_ids):
        with self.redis.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.set(self.key(message_id, ":alive"), 1, ex=ALIVE_SECONDS)
                pipe.expire(self.key(message_id), KEEP_SECONDS)
            for message_id in message_ids:
                pipe.exists(self.key(message_id, ":stop"))
            stops = pipe.execute()[2 * len(message_ids):]
        return [message_id for message_id, is_stopped in zip(message_ids, stops) if is_stopped]

    def ended(self, message_id):
        """The final text is saved: tell every listener (after the last pieces)."""
        self.publish(message_id, sse.DONE)

    def is_alive(self, message_id):
        return bool(self.redis.exists(self.key(message_id, ":alive")))

    def request_stop(self, message_id, wait=0):
        """Ask the process generating the answer to stop it; wait up to `wait` seconds
        for that process to save it."""
        self.redis.set(self.key(message_id, ":stop"), 1, ex=KEEP_SECONDS)
        if wait:
            self.wait_until_done(message_id, wait)

    def follow(self, message_id):
        """Like `Answer.follow` for an answer of another process, or None when no process
        generates it."""
        return self.pieces(message_id) if self.is_alive(message_id) else None

    def pieces(self, message_id):
        """Yield ("snapshot", (content, reasoning)), then ("frames", encoded events) and
        ("tick", None) after each WAIT_SECONDS without any, until `done` or until the
        generating process is gone."""
        key = self.key(message_id)
        entries = self.redis.xrange(key)
        text = {sse.CONTENT: "", sse.REASONING: ""}
        for _, fields in entries:
            if fields["kind"] in text:
                text[fields["kind"]] += fields["text"]
        yield sse.SNAPSHOT, (text[sse.CONTENT], text[sse.REASONING])
        if any(fields["kind"] == sse.DONE for _, fields in entries):
            return
        inbox = Inbox(key, entries[-1][0] if entries else "0-0")
        self.reader.add(inbox)
        try:
            while True:
                new = inbox.take(WAIT_SECONDS)
                if not new:
                    if not self.is_alive(message_id):
                        return
                    yield "tick", None
                pieces = [fields for _, fields in new]
                frames = [sse.piece(fields["kind"], fields["text"]) for fields in pieces
                          if fields["kind"] != sse.DONE]
                if frames:
                    yield "frames", b"".join(frames)
                if any(fields["kind"] == sse.DONE for fields in pieces):
                    return
        finally:
            self.reader.remove(inbox)

    def wait_until_done(self, message_id, seconds):
        """Wait (at most about `seconds`) for the answer to end or its process to go."""
        deadline = time.monotonic() + seconds
        for _ in self.pieces(message_id):
            if time.monotonic() > deadline:
                return


class Inbox:
    """What one listener has yet to read of one stream; `cursor` is the last entry id it got."""

    def __init__(self, key, cursor):
        self.key, self.cursor = key, cursor
        self.entries = []
        self.arrived = threading.Condition()

    def put(self, entries):
        with self.arrived:
            self.entries += entries
            self.arrived.notify()

    def take(self, seconds):
        with self.arrived:
            if not self.entries:
                self.arrived.wait(seconds)
            entries, self.entries = self.entries, []
            return entries


class StreamReader:
    """One thread per process reads every stream that its listeners follow, in one
    blocking XREAD over all of them, and hands each listener its new entries: one Redis
    connection however many browsers listen. A listener that joins writes to this
    process's own wake-up stream, which ends the XREAD under way so the next one includes it."""

    def __init__(self, client, errors):
        self.redis, self.errors = client, errors
        self.wake_key = f"moyan:wake:{uuid.uuid4().hex}"
        self.inboxes = {}  # stream key -> the inboxes following it
        self.lock = threading.Condition()
        self.thread = None

    def add(self, inbox):
        with self.lock:
            self.inboxes.setdefault(inbox.key, set()).add(inbox)
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="redis-stream-reader", daemon=True)
                self.thread.start()
            self.lock.notify()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self.wake_key, {"new": 1}, maxlen=10, approximate=True)
            pipe.expire(self.wake_key, KEEP_SECONDS)
            pipe.execute()

    def remove(self, inbox):
        with self.lock:
            following = self.inboxes.get(inbox.key, set())
            following.discard(inbox)
            if not following:
                self.inboxes.pop(inbox.key, None)

    def run(self):
        wake_cursor = "0-0"
        while True:
            with self.lock:
                while not self.inboxes:
                    self.lock.wait()
                following = {key: list(inboxes) for key, inboxes in self.inboxes.items()}
            # Each stream from where its listener furthest behind is.
            cursors = {key: min((inbox.cursor for inbox in inboxes), key=entry_order)
                       for key, inboxes in following.items()}
            try:
                answer = self.redis.xread({self.wake_key: wake_cursor, **cursors}, count=1000,
                                          block=WAIT_SECONDS * 1000)
            except self.errors as exc:
                log.warning("reading answers from Redis: %s", exc.__class__.__name__)
                time.sleep(1)
                continue
            for key, entries in answer or ():
                if key == self.wake_key:
                    wake_cursor = entries[-1][0]
                    continue
                for inbox in following.get(key, ()):
                    new = [entry for entry in entries if entry_order(entry[0]) > entry_order(inbox.cursor)]
                    if new:
                        inbox.cursor = new[-1][0]
                        inbox.put(new)


def entry_order(entry_id):
    milliseconds, sequence = entry_id.split("-")
    return int(milliseconds), int(sequence)
