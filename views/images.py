"""Painting (/images), the gallery (/gallery) and the picture files themselves."""
import random

from flask import Blueprint, current_app, render_template, request, send_from_directory, url_for
from flask_babel import format_number, gettext, lazy_gettext
from flask_htmx import make_response

from models import Image, ImageTask, Message
from providers import MODEL_ID
from services import images as painting
from services import settings as provider_settings
from views import get_or_404, page_or_fragment, to_id

bp = Blueprint("images", __name__)

SIZE_PRESETS = [("1024*1024", lazy_gettext("1:1 方形 1024×1024")), ("1280*720", lazy_gettext("16:9 横幅 1280×720")),
                ("720*1280", lazy_gettext("9:16 竖幅 720×1280")), ("1024*768", lazy_gettext("4:3 横幅 1024×768")),
                ("768*1024", lazy_gettext("3:4 竖幅 768×1024"))]
WAN_MODELS = ["wan2.2-t2i-flash", "wan2.2-t2i-plus", "wanx2.1-t2i-turbo", "wanx2.1-t2i-plus"]
MIN_SIDE, MAX_SIDE = 512, 1440
MAX_PROMPT, MAX_NEGATIVE = 800, 500
LONG_PROMPT_MODELS = ("wan2.5", "wan2.6")  # these take prompts up to 2,000 characters
MAX_LONG_PROMPT = 2000
MAX_SEED = 2_147_483_647
PAGE_SIZE = 40


def form_context(values, errors=None):
    return {"values": values, "errors": errors or {}, "size_presets": SIZE_PRESETS,
            "providers": provider_settings.PROVIDERS, "model_choices": model_choices(),
            "default_models": {name: provider_settings.load(name).image_model for name in provider_settings.PROVIDERS}}


def model_choices():
    """The image model ids to suggest for each provider."""
    return {"dashscope": WAN_MODELS, "openrouter": provider_settings.load("openrouter").image_models}


def default_values():
    settings = provider_settings.load("dashscope")
    return {"prompt": "", "negative_prompt": "", "size": "1024*1024", "width": 1024, "height": 1024,
            "n": 1, "seed": "", "prompt_extend": True, "watermark": False,
            "provider": "dashscope", "model": settings.image_model}


def values_of(image):
    """The form filled in as for `image`, for "再画一次": the size asked for, not the size
    that came (OpenRouter models choose their own)."""
    width, height = (image.task.width, image.task.height) if image.task else (image.width, image.height)
    size = f"{width}*{height}"
    return {**default_values(), "prompt": image.prompt, "negative_prompt": image.negative_prompt,
            "size": size if size in dict(SIZE_PRESETS) else "custom",
            "width": width, "height": height, "seed": image.seed if image.seed is not None else "",
            "provider": image.provider, "model": image.model,
            "prompt_extend": image.task.prompt_extend if image.task else True,
            "watermark": image.task.watermark if image.task else False}


def prompt_limit(model):
    return MAX_LONG_PROMPT if model.startswith(LONG_PROMPT_MODELS) else MAX_PROMPT


def values_from_answer(message, selection):
    """The form filled in with an answer's text (or the part of it the reader selected), cut
    to the model's prompt limit; and a sentence saying so when it was cut."""
    values = default_values()
    text = (selection or message.content).strip()
    limit = prompt_limit(values["model"])
    values["prompt"] = text[:limit]
    if len(text) <= limit:
        return values, ""
    return values, gettext("这段文字有 %(length)s 字，%(model)s 的提示词最多 %(limit)s 字，已截取前 %(limit)s 字。",
                           length=format_number(len(text)), model=values["model"], limit=limit)


@bp.get("/images")
def page():
    source = to_id(request.args.get("from"))
    answer = to_id(request.args.get("answer"))
    values, notice = default_values(), ""
    if source:
        values = values_of(get_or_404(Image, source))
    elif answer:
        values, notice = values_from_answer(get_or_404(Message, answer), request.args.get("selection", ""))
    return render_template("images.html", tasks=ImageTask.recent(), notice=notice, **form_context(values))


@bp.post("/images")
def paint():
    values, errors = read_paint_form()
    if errors:
        return make_response(render_template("partials/paint_form.html", **form_context(values, errors)), 422,
                             retarget="#paint-form", reswap="outerHTML")
    if values["seed"] is None:
        values["seed"] = random.randint(0, MAX_SEED)  # chosen here, so that it can be reused
    task = ImageTask.create(**{k: values[k] for k in (
        "provider", "model", "prompt", "negative_prompt", "width", "height", "n", "seed",
        "prompt_extend", "watermark")})
    current_app.extensions["painter"].submit_waiting()
    return render_template("partials/image_task.html", task=ImageTask.get_by_id(task.id))


@bp.get("/images/tasks/<int:task_id>")
def task(task_id):
    return render_template("partials/image_task.html", task=get_or_404(ImageTask, task_id))


@bp.get("/gallery")
def gallery():
    query = request.args.get("q", "").strip()[:200]
    model = request.args.get("model", "").strip()[:128]
    images = Image.page(query, model, to_id(request.args.get("before")), PAGE_SIZE)
    return page_or_fragment("gallery.html", "partials/gallery_page.html", images=images, query=query,
                            model=model, models=Image.model_names(), page_size=PAGE_SIZE)


@bp.get("/gallery/<int:image_id>")
def detail(image_id):
    return render_template("image_detail.html", image=get_or_404(Image, image_id))


@bp.delete("/gallery/<int:image_id>")
def delete(image_id):
    painting.delete_image(get_or_404(Image, image_id))
    return make_response("", redirect=url_for("images.gallery"))


@bp.get("/files/<path:relative>")
def file(relative):
    """A picture or thumbnail from the data folder; anything outside it is refused (404)."""
    response = send_from_directory(painting.images_dir(), relative, max_age=365 * 24 * 3600,
                                   as_attachment="download" in request.args)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def read_paint_form():
    """The painting parameters, and a sentence per field that is wrong."""
    form = request.form
    errors = {}
    values = {key: form.get(key, "").strip() for key in (
        "prompt", "negative_prompt", "size", "width", "height", "n", "seed", "provider", "model")}
    values["prompt_extend"] = form.get("prompt_extend") == "on"
    values["watermark"] = form.get("watermark") == "on"
    limit = prompt_limit(values["model"])
    if not values["prompt"]:
        errors["prompt"] = gettext("请写下想画的内容。")
    elif len(values["prompt"]) > limit:
        errors["prompt"] = gettext("提示词最多 %(limit)s 字（现在 %(length)s 字）。", limit=limit,
                                   length=format_number(len(values["prompt"])))
    if len(values["negative_prompt"]) > MAX_NEGATIVE:
        errors["negative_prompt"] = gettext("反向提示词最多 %(limit)s 字。", limit=MAX_NEGATIVE)
    if values["size"] != "custom":
        values["width"], values["height"] = (values["size"] or "1024*1024").partition("*")[::2]
    for side, problem in (("width", lazy_gettext("宽度应为 %(min)s–%(max)s 之间的整数（像素）。")),
                          ("height", lazy_gettext("高度应为 %(min)s–%(max)s 之间的整数（像素）。"))):
        number = to_int(values[side])
        if number is None or not MIN_SIDE <= number <= MAX_SIDE:
            errors["size"] = str(problem) % {"min": MIN_SIDE, "max": MAX_SIDE}
        values[side] = number if number is not None else values[side]
    n = to_int(values["n"])
    if n is None or not 1 <= n <= 4:
        errors["n"] = gettext("张数应为 1–4。")
    values["n"] = n if n is not None else values["n"]
    if values["seed"]:
        seed = to_int(values["seed"])
        if seed is None or not 0 <= seed <= MAX_SEED:
            errors["seed"] = gettext("随机种子应为 0–%(max)s 的整数，留空则随机。", max=MAX_SEED)
        values["seed"] = seed if seed is not None else values["seed"]
    else:
        values["seed"] = None
    check_provider_and_model(values, errors, gettext("请填写模型名称，例如 wan2.2-t2i-flash。"))
    return values, errors


def check_provider_and_model(values, errors, missing_model):
    """The painting or editing form's service and model; `missing_model` asks for one by example."""
    if values["provider"] not in provider_settings.PROVIDERS:
        errors["provider"] = gettext("请选择一个模型服务。")
    if not MODEL_ID.match(values["model"]):
        errors["model"] = missing_model
    elif values["provider"] == "openrouter" and "/" not in values["model"]:
        errors["model"] = gettext("OpenRouter 的模型名称形如「厂商/模型」，例如 google/gemini-2.5-flash-image。")


def to_int(text):
    try:
        return int(str(text).strip())
    except ValueError:
        return None
