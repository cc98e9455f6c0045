"""Server-sent events as the chat page reads them: every event named once here.

A streaming answer sends `snapshot` (the text so far, when a browser attaches), then
`content` and `reasoning` pieces as they come, and always ends with `done` (the finished
message), which `sse-close="done"` in partials/message.html listens for.
"""
from markupsafe import escape

SNAPSHOT, CONTENT, REASONING, DONE = "snapshot", "content", "reasoning", "done"
KEEPALIVE = b": keep-alive\n\n"


def frame(event, html):
    """One event, encoded: each line of `html` as a `data:` line."""
    lines = html.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return (f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


def piece(kind, text):
    """A `content` or `reasoning` piece of an answer: its text, escaped, as one event."""
    return frame(kind, str(escape(text)))
