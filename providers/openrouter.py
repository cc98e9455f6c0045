"""OpenRouter: many vendors' models behind one OpenAI-style API."""
from providers import errors
from providers.base import ChatClient, model_ids

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"


class OpenRouterClient(ChatClient):
    name = "openrouter"
    reasoning_field = "reasoning"

    def headers(self):
        return {**super().headers(), "HTTP-Referer": "https://github.com/moyan-app/moyan",
                "X-Title": "Moyan"}

    def extra_body(self, thinking):
        # `usage.include` asks for the call's cost in its usage (newer servers always send it).
        body = {"usage": {"include": True}}
        if thinking:
            body["reasoning"] = {"effort": "medium"}
        return body

    def check_key(self):
        """Raise if the key is not accepted (`/models` is public and proves nothing)."""
        self.request("GET", f"{self.base_url}/key")

    def list_image_models(self):
        answer = self.request("GET", f"{self.base_url}/models", params={"output_modalities": "image"})
        return model_ids(answer, keep=paints)

    def list_seeing_models(self):
        """The ids of the chat models that take pictures."""
        answer = self.request("GET", f"{self.base_url}/models")
        return sorted(m["id"] for m in answer.json().get("data", [])
                      if "image" in (m.get("architecture") or {}).get("input_modalities", []))

    def generate_images(self, model, prompt, aspect_ratio=None, picture=None):
        """Paint with a chat model that outputs images, or change `picture` (a data URL) as
        `prompt` says; return (data URLs, generation id, the call's usage)."""
        content = prompt if picture is None else [
            {"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": picture}}]
        body = {"model": model, "modalities": ["image", "text"], "stream": False,
                "messages": [{"role": "user", "content": content}]}
        if aspect_ratio:
            body["image_config"] = {"aspect_ratio": aspect_ratio}
        answer = errors.reply_object(self.request("POST", f"{self.base_url}/chat/completions", json=body))
        choices = answer.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise errors.UnreadableReply("image answer without choices")
        choice = choices[0]
        if choice.get("error") or choice.get("finish_reason") == "error":
            raise errors.StreamFailed("image generation error")
        message = choice.get("message")
        images = message.get("images") if isinstance(message, dict) else None
        generation_id = answer.get("id")
        return (image_urls(images), generation_id[:100] if isinstance(generation_id, str) else "",
                answer.get("usage"))

    def error_from_response(self, status, text, retry_after):
        return errors.openrouter_error(status, text, retry_after)

    def error_from_event(self, error):
        return errors.openrouter_stream_error(error)


def image_urls(images):
    """The data URLs in a message's `images`, skipping anything else found there."""
    urls = []
    for image in images if isinstance(images, list) else []:
        url = image.get("image_url") if isinstance(image, dict) else None
        url = url.get("url") if isinstance(url, dict) else None
        if isinstance(url, str) and url.startswith("data:image/"):
            urls.append(url)
    return urls


def paints(model):
    """Whether a /models entry says the model outputs images."""
    architecture = model.get("architecture")
    modalities = architecture.get("output_modalities") if isinstance(architecture, dict) else None
    return isinstance(modalities, list) and "image" in modalities
