"""Painting (/images), the gallery (/gallery) and the picture files themselves."""
from flask import Blueprint, current_app, render_template, request, send_from_directory, url_for
from flask_babel import format_number, gettext, lazy_gettext
from flask_htmx import make_response

from models import Image, ImageTask, Message
from services import settings as provider_settings
from services.painting.files import delete_image, images_dir
from services.painting.form import PaintingForm, prompt_limit
from views import get_or_404, page_or_fragment, to_id

bp = Blueprint("images", __name__)

SIZE_PRESETS = [("1024*1024", lazy_gettext("1:1 方形 1024×1024")), ("1280*720", lazy_gettext("16:9 横幅 1280×720")),
                ("720*1280", lazy_gettext("9:16 竖幅 720×1280")), ("1024*768", lazy_gettext("4:3 横幅 1024×768")),
                ("768*1024", lazy_gettext("3:4 竖幅 768×1024"))]
WAN_MODELS = ["wan2.2-t2i-flash", "wan2.2-t2i-plus", "wanx2.1-t2i-turbo", "wanx2.1-t2i-plus"]
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
    form = PaintingForm(request.form)
    if form.errors:
        return make_response(render_template("partials/paint_form.html", **form_context(form.values, form.errors)),
                             422, retarget="#paint-form", reswap="outerHTML")
    return render_template("partials/image_task.html", task=current_app.extensions["painter"].add(form.fields))


@bp.get("/images/tasks/<int:image_task_id>")
def task(image_task_id):
    return render_template("partials/image_task.html", task=get_or_404(ImageTask, image_task_id))


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
    delete_image(get_or_404(Image, image_id))
    return make_response("", redirect=url_for("images.gallery"))


@bp.get("/files/<path:relative>")
def file(relative):
    """A picture or thumbnail from the data folder; anything outside it is refused (404)."""
    response = send_from_directory(images_dir(), relative, max_age=365 * 24 * 3600,
                                   as_attachment="download" in request.args)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

