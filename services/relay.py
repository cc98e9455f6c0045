"""Answers streamed across server processes, through Redis (when REDIS_URL is set).

The process generating an answer appends each piece to a Redis stream,
`moyan:answer:<id>`, ending it with a `done` entry once the final text is saved. A
browser attached to any process reads that stream: every piece so far as the snapshot,
then new ones as they come. While the answer runs, its process renews a short-lived
`…:alive` key once a second; when the key is gone, nothing generates the answer any more
(that process died) and it is marked interrupted. A stop asked of another process sets
`…:stop`, which the generating process sees at its next renewal.
"""
import logging
import time

import redis

log = logging.getLogger(__name__)

# An answer whose process has not renewed it for this long is orphaned. Renewed every
# second; the margin is for a process so loaded that its saver runs late.
ALIVE_SECONDS = 15
WAIT_SECONDS = 5  # a listener with nothing new checks this often that the answer is alive
KEEP_SECONDS = 600  # a stream is kept this long after its last renewal, for late attaches
DONE_KEEP_SECONDS = 60


class RedisRelay:
    def __init__(self, url):
        # A read may block for WAIT_SECONDS (XREAD): the socket must wait longer.
        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                          socket_timeout=WAIT_SECONDS + 10)

    @staticmethod
    def key(message_id, suffix=""):
        return f"moyan:answer:{message_id}{suffix}"

    def publish(self, message_id, kind, text=""):
        """Best effort: with Redis away, the answer goes on and is saved; only listeners on
        other processes miss pieces until its end, which they read from the database."""
        try:
            self.redis.xadd(self.key(message_id), {"kind": kind, "text": text})
        except redis.RedisError as exc:
            log.warning("answer %s: piece not relayed: %s", message_id, exc.__class__.__name__)

    def renew(self, message_ids):
        """Mark these answers as generated here for a few more seconds; return the ids
        of those someone asked to stop."""
        if not message_ids:
            return []
        try:
            return self._renew(message_ids)
        except redis.RedisError as exc:
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

    def end(self, message_id):
        """The final text is saved: tell every listener, and let the stream go soon."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self.key(message_id), {"kind": "done", "text": ""})
            pipe.expire(self.key(message_id), DONE_KEEP_SECONDS)
            pipe.delete(self.key(message_id, ":alive"), self.key(message_id, ":stop"))
            pipe.execute()

    def is_alive(self, message_id):
        return bool(self.redis.exists(self.key(message_id, ":alive")))

    def request_stop(self, message_id):
        self.redis.set(self.key(message_id, ":stop"), 1, ex=KEEP_SECONDS)

    def attach(self, message_id):
        """Yield like `Generation.attach`: ("snapshot", (content, reasoning)), then pieces
        and ("tick", None) after each WAIT_SECONDS without one, until `done` or until
        the generating process is gone."""
        key = self.key(message_id)
        entries = self.redis.xrange(key)
        text = {"content": "", "reasoning": ""}
        for _, fields in entries:
            if fields["kind"] in text:
                text[fields["kind"]] += fields["text"]
        yield "snapshot", (text["content"], text["reasoning"])
        if any(fields["kind"] == "done" for _, fields in entries):
            return
        last = entries[-1][0] if entries else "0-0"
        while True:
            answer = self.redis.xread({key: last}, count=1000, block=WAIT_SECONDS * 1000)
            if not answer:
                if not self.is_alive(message_id):
                    return
                yield "tick", None
                continue
            for last, fields in answer[0][1]:
                if fields["kind"] == "done":
                    return
                yield fields["kind"], fields["text"]

    def wait_until_done(self, message_id, seconds):
        """Wait (at most `seconds`) for the answer to end; True if it did."""
        key = self.key(message_id)
        deadline = time.monotonic() + seconds
        newest = self.redis.xrevrange(key, count=1)
        if newest and newest[0][1]["kind"] == "done":
            return True
        last = newest[0][0] if newest else "0-0"
        while (remaining := deadline - time.monotonic()) > 0:
            answer = self.redis.xread({key: last}, block=max(1, int(remaining * 1000)))
            for last, fields in answer[0][1] if answer else ():
                if fields["kind"] == "done":
                    return True
            if not answer and not self.is_alive(message_id):
                return False
        return False
