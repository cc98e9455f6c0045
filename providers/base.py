"""What DashScope's compatible mode and OpenRouter share: OpenAI-style chat over HTTP."""
import json
import logging
import threading
from http.cookiejar import DefaultCookiePolicy

import requests
import urllib3
from requests.adapters import HTTPAdapter

from providers import errors
from providers.retry import retried
from providers.sse import iter_sse_data

log = logging.getLogger(__name__)

MAX_ERROR_BODY = 64 * 1024
KEPT_CONNECTIONS = 256  # per upstream host, idle, for the next call

_session = None
_session_lock = threading.Lock()


def shared_session():
    """The process's one `requests.Session` for every upstream call: connections are kept
    and reused (a new connection, and in real use a TLS handshake, for every answer cost
    more than relaying it). It keeps no cookies, so nothing of one call rides on another."""
    global _session
    with _session_lock:
        if _session is None:
            _session = requests.Session()
            _session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            for scheme in ("http://", "https://"):
                _session.mount(scheme, HTTPAdapter(pool_maxsize=KEPT_CONNECTIONS))
        return _session


class ChatClient:
    """One upstream account: a key and a base URL, over the process's shared session.

    Subclasses say how the provider names things: `chat_base`, `reasoning_field`,
    `extra_body()`, `error_from_response()` and `error_from_event()`. `thinking` asks
    a reasoning model to show its reasoning.
    """
    name = ""
    reasoning_field = "reasoning"
    max_retries = 2

    def __init__(self, api_key, base_url, connect_timeout=10, read_timeout=60, retry_delay=1.0,
                 key_base_url=None):
        self.api_key = api_key or ""
        self.base_url = base_url.rstrip("/")
        self.key_base_url = (key_base_url or base_url).rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retry_delay = retry_delay
        self.session = shared_session()

    @property
    def chat_base(self):
        return self.base_url

    def headers(self):
        if not self.api_key:
            raise errors.MissingKey()
        if self.key_base_url != self.base_url:
            raise errors.KeyForAnotherUrl()  # a saved key goes nowhere else, whoever asks
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}

    def extra_body(self, thinking):
        return {}

    def error_from_response(self, status, text, retry_after):
        raise NotImplementedError

    def error_from_event(self, error):
        raise NotImplementedError

    # -- calls ---------------------------------------------------------------

    def list_models(self):
        """The model ids this key can use, sorted."""
        return model_ids(self.request("GET", f"{self.chat_base}/models"))

    def stream_chat(self, model, messages, thinking=False):
        """Yield ("reasoning" | "content", text) pieces, then ("usage", dict) if sent.

        Raises a ProviderError; the text yielded so far is the caller's to keep. Closing
        the generator closes the upstream response, which tells the provider to stop.
        """
        body = {"model": model, "messages": messages, "stream": True,
                **self.extra_body(thinking)}
        response = self.request("POST", f"{self.chat_base}/chat/completions", json=body, stream=True)
        try:
            yield from self.read_stream(response)
        finally:
            response.close()

    def read_stream(self, response):
        is_finished = False
        try:
            chunks = response.iter_content(chunk_size=None)
            for data in iter_sse_data(chunks):
                if data.strip() == "[DONE]":
                    read_to_the_end(response, chunks)
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise errors.MalformedData("bad json in stream") from None
                if not isinstance(event, dict):
                    raise errors.MalformedData("event is not an object")
                if isinstance(event.get("error"), dict):
                    raise self.error_from_event(event["error"])
                if event.get("usage"):
                    yield "usage", event["usage"]
                for choice in event.get("choices") or []:
                    delta = (choice.get("delta") if isinstance(choice, dict) else None) or {}
                    if not isinstance(delta, dict):
                        raise errors.MalformedData("delta is not an object")
                    if text := as_text(delta.get(self.reasoning_field)):
                        yield "reasoning", text
                    if text := as_text(delta.get("content")):
                        yield "content", text
                    if choice.get("finish_reason") == "content_filter":
                        raise errors.OutputModerated("finish_reason content_filter")
                    is_finished = is_finished or bool(choice.get("finish_reason"))
        except requests.RequestException as exc:
            raise network_error(exc, during_stream=True) from exc
        if not is_finished:
            raise errors.StreamDropped("stream ended without [DONE]")

    def request(self, method, url, headers=None, is_repeatable=True, **kwargs):
        """Send with retries for rate limits and busy servers; return a 200 response. A
        request that is not `is_repeatable` (it creates something billed) is retried only
        when refused for its rate: a 5xx may come from a gateway after the provider had it."""
        def is_retryable(error):
            return (isinstance(error, errors.ProviderError) and error.is_retryable
                    and (is_repeatable or isinstance(error, errors.RateLimited)))
        return retried(lambda: self.send(method, url, headers, **kwargs), self.max_retries + 1,
                       is_retryable, delay=self.retry_delay)

    def send(self, method, url, headers, **kwargs):
        """One try: the 200 response, or the error the answer means, raised."""
        try:
            response = self.session.request(method, url, headers={**self.headers(), **(headers or {})},
                                            timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise network_error(exc) from exc
        if response.status_code == 200:
            return response
        error = self.error_from_response(response.status_code, read_limited(response),
                                         retry_after_seconds(response))
        response.close()
        log.warning("%s %s answered %s (%s)", self.name, url.rsplit("/", 1)[-1],
                    error.__class__.__name__, error.detail)
        raise error


def read_to_the_end(response, chunks):
    """Read what follows [DONE] (the body's closing chunk, normally there already), so that
    the connection goes back to the pool for the next call instead of a new one (and, with
    the real services, a new TLS handshake). A server that keeps the body open gets a second."""
    try:
        connection = response.raw.connection
        if connection is not None and connection.sock is not None:
            connection.sock.settimeout(1)
        for _ in chunks:
            pass
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        pass  # the answer is whole; only this connection is lost


def model_ids(response, keep=lambda model: True):
    """The sorted ids of a /models reply's `data`, skipping entries of any other shape."""
    data = errors.reply_object(response).get("data")
    if not isinstance(data, list):
        raise errors.UnreadableReply("/models without a list")
    return sorted({model["id"] for model in data if isinstance(model, dict)
                   and isinstance(model.get("id"), str) and model["id"] and keep(model)})


def as_text(value):
    """A delta's text: a string, or the text parts of a list of content parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part["text"] for part in value
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def read_limited(response):
    body = b""
    for chunk in response.iter_content(chunk_size=8192):
        body += chunk
        if len(body) > MAX_ERROR_BODY:
            break
    return body.decode("utf-8", errors="replace")


def retry_after_seconds(response):
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def network_error(exc, during_stream=False):
    """The typed error for a `requests` exception."""
    if isinstance(exc, requests.ConnectTimeout):
        return errors.NetworkError("connect timeout")
    is_read_timeout = isinstance(exc, requests.ReadTimeout) or (
        exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError))
    if is_read_timeout:
        return errors.Timeout("read timeout")
    if during_stream:
        return errors.StreamDropped(exc.__class__.__name__)
    return errors.NetworkError(exc.__class__.__name__)
