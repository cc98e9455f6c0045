"""OpenRouter: many vendors' models behind one OpenAI-style API."""
from providers import errors
from providers.base import ChatClient

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"


class OpenRouterClient(ChatClient):
    name = "openrouter"
    reasoning_field = "reasoning"

    def headers(self):
        return {**super().headers(), "HTTP-Referer": "https://github.com/moyan-app/moyan",
                "X-Title": "Moyan"}

    def extra_body(self, stream, thinking):
        return {"reasoning": {"effort": "medium"}} if thinking else {}

    def check_key(self):
        """Raise if the key is not accepted (`/models` is public and proves nothing)."""
        self.request("GET", f"{self.base_url}/key")

    def error_from_response(self, status, text, retry_after):
        return errors.openrouter_error(status, text, retry_after)

    def error_from_event(self, error):
        return errors.openrouter_stream_error(error)
