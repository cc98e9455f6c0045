"""Provider settings: what the user saved in the editor, else the environment, else defaults."""
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from flask import current_app, g, has_request_context
from flask_babel import gettext, lazy_gettext

from models import Setting
from providers import MODEL_ID
from providers.dashscope import REGIONS, DashScopeClient
from providers.errors import InvalidKey, ProviderError
from services.forms import to_int
from providers.openrouter import OpenRouterClient

PROVIDERS = {"dashscope": lazy_gettext("阿里云百炼（DashScope）"), "openrouter": "OpenRouter"}
CLIENTS = {"dashscope": DashScopeClient, "openrouter": OpenRouterClient}
DEFAULT_MODELS = {
    "dashscope": {"text_model": "qwen-plus", "image_model": "wan2.2-t2i-flash",
                  "vision_model": "qwen3-vl-plus", "edit_model": "wan2.5-i2i-preview"},
    "openrouter": {"text_model": "openai/gpt-4o-mini", "image_model": "google/gemini-2.5-flash-image",
                   "vision_model": "google/gemini-2.5-flash", "edit_model": "google/gemini-2.5-flash-image"},
}
# DashScope models that see pictures although their names lack "vl"; the settings can add more.
DEFAULT_SEEING_MODELS = "qwen3.5-plus qwen3.6-plus"
DEFAULT_HISTORY_PICTURES = 4
MAX_HISTORY_PICTURES = 20
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{8,200}$")  # printable ASCII: requests puts it in a header


@dataclass
class ProviderSettings:
    name: str
    api_key: str
    is_key_saved: bool
    key_base_url: str  # the only base URL the key is ever sent to: the one it was saved with
    base_url: str
    region: str
    text_model: str
    image_model: str
    vision_model: str
    edit_model: str
    models: list = field(default_factory=list)
    image_models: list = field(default_factory=list)
    # Models known to see pictures: DashScope's typed in the settings, OpenRouter's from /models.
    seeing_models: list = field(default_factory=list)

    @property
    def label(self):
        return PROVIDERS[self.name]

    @property
    def is_key_for_another_url(self):
        return bool(self.api_key) and self.key_base_url != self.base_url

    @property
    def key_hint(self):
        """Enough of the key to recognise it, never enough to use it."""
        return self.api_key[-4:] if len(self.api_key) >= 12 else ""


def saved_values():
    """The saved settings, read once per request: a page reads them for every provider."""
    if not has_request_context():
        return Setting.all_values()
    cached = g.get("saved_settings")
    if cached is None or cached[0] != Setting.changes:
        cached = g.saved_settings = (Setting.changes, Setting.all_values())
    return cached[1]


def load(name, changes=None):
    """What is saved for `name`; `changes` (form values, None for back to the default) as
    if they were saved too, to test or check them first.

    A key goes only to the base URL it was saved with (a key from the environment: the
    environment's), so that changing the address cannot send the saved key elsewhere."""
    stored = saved_values()
    changes = {f"{name}_{field}": value for field, value in (changes or {}).items()}
    saved = {key: value for key, value in {**stored, **changes}.items() if value is not None}
    region, base_url = address(name, saved)
    if f"{name}_api_key" in changes:
        key_base_url = base_url
    elif f"{name}_api_key" in stored:
        # A key saved before keys were bound to an address keeps the one it has been used with.
        key_base_url = stored.get(f"{name}_key_base_url") or address(name, stored)[1]
    else:
        key_base_url = address(name, {})[1]
    return ProviderSettings(
        name=name,
        api_key=saved.get(f"{name}_api_key") or current_app.config.get(f"{name.upper()}_API_KEY") or "",
        is_key_saved=f"{name}_api_key" in saved,
        key_base_url=key_base_url,
        base_url=base_url,
        region=region,
        text_model=saved.get(f"{name}_text_model") or DEFAULT_MODELS[name]["text_model"],
        image_model=saved.get(f"{name}_image_model") or DEFAULT_MODELS[name]["image_model"],
        vision_model=saved.get(f"{name}_vision_model") or DEFAULT_MODELS[name]["vision_model"],
        edit_model=saved.get(f"{name}_edit_model") or DEFAULT_MODELS[name]["edit_model"],
        models=json.loads(saved.get(f"{name}_models") or "[]"),
        image_models=json.loads(saved.get(f"{name}_image_models") or "[]"),
        seeing_models=seeing_models(name, saved),
    )


def seeing_models(name, saved):
    if name == "dashscope":
        return (saved.get("dashscope_seeing_models") or DEFAULT_SEEING_MODELS).split()
    return json.loads(saved.get(f"{name}_seeing_models") or "[]")


def save_general(form):
    """Save the chat service and the pictures sent with each request; return (values, errors)."""
    values = {"chat_provider": form.get("chat_provider", ""),
              "history_pictures": to_int(form.get("history_pictures", str(history_pictures())))}
    errors = {}
    if values["chat_provider"] not in PROVIDERS:
        errors["chat_provider"] = gettext("请选择一个模型服务。")
    elif values["history_pictures"] is None or not 0 <= values["history_pictures"] <= MAX_HISTORY_PICTURES:
        errors["history_pictures"] = gettext("对话里随请求发送的图片数应为 0–%(max)s。", max=MAX_HISTORY_PICTURES)
    else:
        for name, value in values.items():
            Setting.set_value(name, str(value))
    return values, errors


def history_pictures():
    """How many of the latest pictures of a conversation go with each request."""
    return int(saved_values().get("history_pictures") or DEFAULT_HISTORY_PICTURES)


def address(name, saved):
    """The region and base URL that the `saved` values make, else the environment's."""
    env_base = current_app.config[f"{name.upper()}_BASE_URL"].rstrip("/")
    region = (saved.get(f"{name}_region") or region_of(env_base)) if name == "dashscope" else ""
    if region in REGIONS:
        return region, REGIONS[region][1]
    return region, (saved.get(f"{name}_base_url") or env_base).rstrip("/")


def region_of(base_url):
    return next((code for code, (_, url) in REGIONS.items() if url == base_url.rstrip("/")), "custom")


def chat_provider():
    return saved_values().get("chat_provider", "dashscope")


def client(name, settings=None):
    settings = settings or load(name)
    config = current_app.config
    return CLIENTS[name](settings.api_key, settings.base_url, key_base_url=settings.key_base_url,
                         connect_timeout=config["CONNECT_TIMEOUT"],
                         read_timeout=config["READ_TIMEOUT"],
                         retry_delay=config["RETRY_DELAY"])


def save_models(name, model_ids, image_model_ids=()):
    Setting.set_value(f"{name}_models", json.dumps(model_ids))
    Setting.set_value(f"{name}_image_models", json.dumps(list(image_model_ids)))


def read_form(name, form):
    """The values to save from the editor's `form` for `name`, and a sentence per wrong field."""
    values, errors = {}, {}
    api_key = form.get("api_key", "").strip()
    if api_key:  # empty keeps the saved key
        if KEY_PATTERN.match(api_key):
            values["api_key"] = api_key
        else:
            errors["api_key"] = gettext("API Key 应为 8–200 个可见的英文字符（不含空格和中文）。")
    for field_name in ("text_model", "image_model", "vision_model", "edit_model"):
        model = form.get(field_name, "").strip()
        if model and not MODEL_ID.match(model):
            errors[field_name] = gettext("模型名称只能包含字母、数字和 . _ : / @ + -，不超过 128 个字符。")
        values[field_name] = model or None
    if name == "dashscope" and "seeing_models" in form:
        seeing = form.get("seeing_models", "").replace(",", " ").split()
        if not all(MODEL_ID.match(model) for model in seeing):
            errors["seeing_models"] = gettext("模型名称只能包含字母、数字和 . _ : / @ + -，不超过 128 个字符。")
        values["seeing_models"] = " ".join(seeing) or None
    region = form.get("region") if name == "dashscope" else "custom"
    if region is not None and name == "dashscope":
        if region not in REGIONS and region != "custom":
            errors["region"] = gettext("请选择一个地域。")
        values["region"] = region
    if region == "custom":
        base_url = form.get("base_url", "").strip().rstrip("/")
        if base_url and not is_http_url(base_url):
            errors["base_url"] = gettext("服务地址应以 http:// 或 https:// 开头，例如 https://openrouter.ai/api/v1。")
        values["base_url"] = base_url or None
    return values, errors


def is_http_url(url):
    try:
        parsed = urlparse(url)
        parsed.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:  # also "Invalid IPv6 URL", for an unclosed [
        return False
    return (parsed.scheme in ("http", "https") and bool(parsed.hostname) and len(url) <= 300
            and url.isprintable() and " " not in url)


def save_form(name, form):
    """Save what the editor's `form` holds for `name`; a sentence per wrong field, if any."""
    values, errors = read_form(name, form)
    settings = load(name, values)
    if settings.is_key_for_another_url and not errors:
        errors["api_key"] = gettext("服务地址变了：保存的 API Key 只会发往保存它时的地址，"
                                    "不会发往新地址。要改用新地址，请在这里重新输入 API Key 后再保存。")
    if errors:
        return errors
    if "api_key" in values:
        values["key_base_url"] = settings.base_url  # the only address this key will go to
    for key, value in values.items():
        Setting.set_value(f"{name}_{key}", value)
    return {}


def delete_key(name):
    Setting.set_value(f"{name}_api_key", None)
    Setting.set_value(f"{name}_key_base_url", None)


def check_connection(name, values):
    """Ask the provider with `values` (the editor's, saved or not) for its models; keep the
    list. Returns the model ids, or a sentence saying why it failed."""
    settings = load(name, values)  # a saved key only to its own address
    provider = client(name, settings)
    image_models = []
    try:
        if name == "openrouter":
            provider.check_key()
            image_models = provider.list_image_models()  # /models lists text models by default
            Setting.set_value("openrouter_seeing_models", json.dumps(provider.list_seeing_models()))
        models = provider.list_models()
    except ProviderError as exc:
        if isinstance(exc, InvalidKey) and name == "dashscope":
            return [], gettext("连接失败：API Key 无效，或它不属于所选地域「%(region)s」。"
                               "各地域的 Key 不通用，请检查 Key，或换一个地域再试。",
                               region=region_label(settings.region))
        return [], exc.user_message
    save_models(name, models, image_models)
    return sorted(set(models + image_models)), ""


def region_label(code):
    return REGIONS[code][0] if code in REGIONS else gettext("自定义地址")
