"""The settings editor: keys, regions, base URLs and default models, saved in place."""
import json
import re
from urllib.parse import urlparse

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext

from models import Setting
from providers import MODEL_ID
from providers.dashscope import REGIONS
from providers.errors import InvalidKey, ProviderError
from services import access, open_bind
from services import settings as provider_settings
from services.painting.form import to_int
from views import alert

bp = Blueprint("settings", __name__, url_prefix="/settings")

MAX_HISTORY_PICTURES = 20
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{8,200}$")  # printable ASCII: requests puts it in a header


def provider_or_404(name):
    if name not in provider_settings.PROVIDERS:
        abort(404)
    return name


def render_section(name, saved="", errors=None, status=200):
    return render_template("partials/provider_settings.html", s=provider_settings.load(name),
                           regions=REGIONS, saved=saved, errors=errors or {}), status


@bp.get("")
def page():
    return render_template("settings.html",
                           sections=[provider_settings.load(n) for n in provider_settings.PROVIDERS],
                           providers=provider_settings.PROVIDERS,
                           chat_provider=provider_settings.chat_provider(),
                           history_pictures=provider_settings.history_pictures(),
                           regions=REGIONS, saved="", errors={},
                           is_password_from_env=access.is_password_from_env())


@bp.post("/<name>")
def save(name):
    provider_or_404(name)
    values, errors = read_provider_form(name)
    settings = provider_settings.load(name, values)
    if settings.is_key_for_another_url and not errors:
        errors["api_key"] = gettext("服务地址变了：保存的 API Key 只会发往保存它时的地址，"
                                    "不会发往新地址。要改用新地址，请在这里重新输入 API Key 后再保存。")
    if errors:
        return render_section(name, errors=errors, status=422)
    if "api_key" in values:
        values["key_base_url"] = settings.base_url  # the only address this key will go to
    for key, value in values.items():
        Setting.set_value(f"{name}_{key}", value)
    return render_section(name, saved=gettext("已保存。"))


@bp.post("/<name>/key/delete")
def delete_key(name):
    provider_or_404(name)
    Setting.set_value(f"{name}_api_key", None)
    Setting.set_value(f"{name}_key_base_url", None)
    return render_section(name, saved=gettext("已删除保存的 API Key。"))


@bp.post("/<name>/test")
def test_connection(name):
    """Test what the form holds now, saved or not."""
    provider_or_404(name)
    values, errors = read_provider_form(name)
    if errors:
        return render_template("partials/connection_result.html", name=name, models=[],
                               error=next(iter(errors.values())))
    settings = provider_settings.load(name, values)  # a saved key only to its own address
    client = provider_settings.client(name, settings)
    image_models = []
    try:
        if name == "openrouter":
            client.check_key()
            image_models = client.list_image_models()  # /models lists text models by default
            Setting.set_value("openrouter_seeing_models", json.dumps(client.list_seeing_models()))
        models = client.list_models()
    except ProviderError as exc:
        message = exc.user_message
        if isinstance(exc, InvalidKey) and name == "dashscope":
            message = gettext("连接失败：API Key 无效，或它不属于所选地域「%(region)s」。"
                              "各地域的 Key 不通用，请检查 Key，或换一个地域再试。",
                              region=region_label(settings.region))
        return render_template("partials/connection_result.html", name=name, error=message,
                               models=[])
    provider_settings.save_models(name, models, image_models)
    return render_template("partials/connection_result.html", name=name, error="",
                           models=sorted(set(models + image_models)))


@bp.post("/general")
def save_general():
    provider = request.form.get("chat_provider", "")
    if provider not in provider_settings.PROVIDERS:
        return alert(gettext("请选择一个模型服务。"))
    pictures = to_int(request.form.get("history_pictures", provider_settings.history_pictures()))
    if pictures is None or not 0 <= pictures <= MAX_HISTORY_PICTURES:
        return alert(gettext("对话里随请求发送的图片数应为 0–%(max)s。", max=MAX_HISTORY_PICTURES))
    Setting.set_value("chat_provider", provider)
    Setting.set_value("history_pictures", str(pictures))
    return render_template("partials/general_settings.html", providers=provider_settings.PROVIDERS,
                           chat_provider=provider, history_pictures=pictures, saved=gettext("已保存。"))


@bp.post("/password")
def save_password():
    password = request.form.get("password", "")
    if access.is_password_from_env():
        return render_password(error=gettext("访问密码由环境变量设置，不能在这里修改。"), status=422)
    if not 8 <= len(password) <= 200:
        return render_password(error=gettext("访问密码至少 8 个字符。"), status=422)
    if password != request.form.get("password_again", ""):
        return render_password(error=gettext("两次输入的密码不一致。"), status=422)
    access.set_password(password)
    access.start_session()  # the person who set it stays in; every other login has ended
    return render_password(saved=gettext("访问密码已保存，其他浏览器需要用新密码重新登录。"))


@bp.post("/password/delete")
def delete_password():
    if open_bind.is_open_to_network(current_app.config):
        return render_password(error=gettext(
            "墨言正监听网络地址 %(host)s，取消密码会让网络上的任何人都能使用它，所以没有取消。"
            "要取消密码，请先让墨言只监听本机（MOYAN_HOST=127.0.0.1）并重启。",
            host=current_app.config["HOST"]), status=422)
    if not access.is_password_from_env():
        access.set_password(None)
    return render_password(saved=gettext("已取消访问密码。"))


def render_password(error="", saved="", status=200):
    return render_template("partials/password_settings.html", password_error=error, password_saved=saved,
                           is_password_from_env=access.is_password_from_env()), status


def region_label(code):
    return REGIONS[code][0] if code in REGIONS else gettext("自定义地址")


def read_provider_form(name):
    """The values to save from the form, and a sentence per field that is wrong."""
    form = request.form
    values, errors = {}, {}
    api_key = form.get("api_key", "").strip()
    if api_key:  # empty keeps the saved key
        if KEY_PATTERN.match(api_key):
            values["api_key"] = api_key
        else:
            errors["api_key"] = gettext("API Key 应为 8–200 个可见的英文字符（不含空格和中文）。")
    for field in ("text_model", "image_model", "vision_model", "edit_model"):
        model = form.get(field, "").strip()
        if model and not MODEL_ID.match(model):
            errors[field] = gettext("模型名称只能包含字母、数字和 . _ : / @ + -，不超过 128 个字符。")
        values[field] = model or None
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
