"""Which model answers a message with pictures: the conversation's when it can see them,
else the provider's default vision model."""
import json
import logging
import re

from models import Setting
from providers.errors import ProviderError
from services import settings as provider_settings

log = logging.getLogger(__name__)

VL_NAME = re.compile(r"(^|[-_.])(vl|qvq)([-_.]|$)", re.IGNORECASE)  # qwen3-vl-plus, qwen-vl-max, qvq-max


def answering_model(settings, model, has_pictures):
    if not has_pictures or can_see(settings, model):
        return model
    return settings.vision_model


def can_see(settings, model):
    if settings.name == "dashscope":
        return bool(VL_NAME.search(model)) or model in settings.seeing_models
    return model in openrouter_seeing_models(settings)


def openrouter_seeing_models(settings):
    """OpenRouter says in /models which models take pictures; asked once, then kept (testing
    the connection asks again)."""
    if settings.seeing_models:
        return settings.seeing_models
    try:
        ids = provider_settings.client("openrouter", settings).list_seeing_models()
    except ProviderError as exc:
        log.info("OpenRouter models not listed: %s", exc.__class__.__name__)
        return []
    Setting.set_value("openrouter_seeing_models", json.dumps(ids))
    return ids
