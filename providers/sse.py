"""Read the `data:` payloads of a server-sent event stream."""


def iter_sse_data(chunks):
    """Yield each `data:` payload, decoded, from an iterable of byte chunks.

    Chunks may split lines anywhere, even inside a UTF-8 character. Lines may end in
    `\\n` or `\\r\\n`; `:` comment lines (OpenRouter's keep-alives) and other fields are
    skipped. Every provider here sends one JSON document per `data:` line, so each line
    is a payload of its own. A last line without a newline is still read.
    """
    parts = []
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            parts.append(chunk[start:end])
            line = b"".join(parts)
            parts = []
            start = end + 1
            if (data := line_data(line)) is not None:
                yield data
        if start < len(chunk):
            parts.append(chunk[start:])
    if parts and (data := line_data(b"".join(parts))) is not None:
        yield data


def line_data(line):
    line = line.rstrip(b"\r")
    if not line.startswith(b"data:"):
        return None
    data = line[5:]
    if data.startswith(b" "):
        data = data[1:]
    return data.decode("utf-8", errors="replace")
