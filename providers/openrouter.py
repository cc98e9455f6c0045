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

    def list_image_models(self):
        answer = self.request("GET", f"{self.base_url}/models", params={"output_modalities": "image"})
        return sorted(m["id"] for m in answer.json().get("data", [])
                      if "image" in (m.get("architecture") or {}).get("output_modalities", []))

    def list_seeing_models(self):
        """The ids of the chat models that take pictures."""
        answer = self.request("GET", f"{self.base_url}/models")
        return sorted(m["id"] for m in answer.json().get("data", [])
                      if "image" in (m.get("architecture") or {}).get("input_modalities", []))

    def generate_images(self, model, prompt, aspect_ratio=None, picture=None):
        """Paint with a chat model that outputs images, or change `picture` (a data URL) as
        `prompt` says; return (data URLs, generation id)."""
        content = prompt if picture is None else [
            {"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": picture}}]
        body = {"model": model, "modalities": ["image", "text"], "stream": False,
                "messages": [{"role": "user", "content": content}]}
        if aspect_ratio:
            body["image_config"] = {"aspect_ratio": aspect_ratio}
        answer = self.request("POST", f"{self.base_url}/chat/completions", json=body).json()
        choice = (answer.get("choices") or [{}])[0]
        if choice.get("error") or choice.get("finish_reason") == "error":
            raise errors.StreamFailed("image generation error")
        images = (choice.get("message") or {}).get("images") or []
        urls = [(image.get("image_url") or {}).get("url", "") for image in images]
        return [url for url in urls if url.startswith("data:image/")], answer.get("id", "")

    def error_from_response(self, status, text, retry_after):
        return errors.openrouter_error(status, text, retry_after)

    def error_from_event(self, error):
        return errors.openrouter_stream_error(error)
