from providers.sse import iter_sse_data


def test_reads_each_data_line_of_the_dashscope_framing():
    stream = [b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n']
    assert list(iter_sse_data(stream)) == ['{"a":1}', '{"a":2}', "[DONE]"]


def test_accepts_crlf_line_endings_and_data_without_a_space():
    stream = [b'data:{"a":1}\r\n\r\ndata: [DONE]\r\n\r\n']
    assert list(iter_sse_data(stream)) == ['{"a":1}', "[DONE]"]


def test_skips_comment_lines_and_other_fields():
    stream = [b": OPENROUTER PROCESSING\n\nevent: x\nid: 3\nretry: 10\ndata: {}\n\n"]
    assert list(iter_sse_data(stream)) == ["{}"]


def test_joins_a_line_split_across_chunks_even_inside_a_utf8_character():
    encoded = 'data: {"content":"你好"}\n\n'.encode()
    cut = encoded.index("好".encode()) + 1
    assert list(iter_sse_data([encoded[:cut], encoded[cut:]])) == ['{"content":"你好"}']


def test_splits_between_cr_and_lf_do_not_make_empty_payloads():
    assert list(iter_sse_data([b"data: 1\r", b"\n\r", b"\ndata: 2\r\n"])) == ["1", "2"]


def test_a_stream_ending_without_done_or_newline_still_yields_its_last_line():
    assert list(iter_sse_data([b'data: {"a":1}\n\ndata: {"b"', b":2}"])) == ['{"a":1}', '{"b":2}']


def test_empty_data_and_blank_lines_are_kept_apart():
    assert list(iter_sse_data([b"\n\n\ndata:\n\n"])) == [""]
