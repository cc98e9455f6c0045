"""Image editing ("改这张图"): an instruction and a picture from the gallery or the chat make a
new picture, followed by the painter like any painting."""
import random

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import format_number, gettext
from flask_htmx import make_response

from models import Attachment, Image, ImageTask
from services import settings as provider_settings
from views import get_or_404, to_id
from views.images import MAX_SEED, check_provider_and_model, prompt_limit, to_int

bp = Blueprint("edits", __name__)

WAN_EDIT_MODELS = ["wan2.5-i2i-preview"]


def source_from(args):
    """(file, gallery Image or None, width, height) of the picture to change: ?image= (the
    gallery), ?attachment= (a picture sent in the chat) or ?from= (the picture an earlier
    edit changed: "再画一次")."""
    if to_id(args.get("attachment")):
        picture = get_or_404(Attachment, args.get("attachment"))
        return picture.file, None, picture.width, picture.height
    if to_id(args.get("from")):
        earlier = get_or_404(Image, args.get("from")).task
        if earlier is None or not earlier.is_edit:
            abort(404)
        return earlier.source_file, earlier.source_image, earlier.width, earlier.height
    image = get_or_404(Image, args.get("image"))
    return image.file, image, image.width, image.height


def source_name(args):
    """The one of ?image=, ?attachment=, ?from= that names the source: kept in the form."""
    return next(((name, args[name]) for name in ("attachment", "from", "image") if to_id(args.get(name))), ("image", ""))


def form_context(values, errors=None):
    return {"values": values, "errors": errors or {}, "providers": provider_settings.PROVIDERS,
            "model_choices": {"dashscope": WAN_EDIT_MODELS,
                              "openrouter": provider_settings.load("openrouter").image_models},
            "default_models": {name: provider_settings.load(name).edit_model for name in provider_settings.PROVIDERS}}


def default_values(args):
    """The form for a source, filled in as the earlier edit was for ?from= ("再画一次")."""
    file, image, width, height = source_from(args)
    values = {"source_file": file, "source": source_name(args), "width": width, "height": height,
              "image": image.id if image else ""}
    earlier = get_or_404(Image, args["from"]).task if to_id(args.get("from")) else None
    if earlier is not None:
        return {**values, "prompt": earlier.prompt, "n": earlier.n, "provider": earlier.provider,
                "model": earlier.model, "prompt_extend": earlier.prompt_extend, "watermark": earlier.watermark}
    provider = image.provider if image else provider_settings.chat_provider()
    return {**values, "prompt": "", "n": 1, "provider": provider, "model": provider_settings.load(provider).edit_model,
            "prompt_extend": True, "watermark": False}


@bp.get("/images/edit")
def page():
    values = default_values(request.args)
    return render_template("image_edit.html", tasks=ImageTask.edits_of(values["source_file"]), **form_context(values))


@bp.post("/images/edit")
def submit():
    values, errors = read_edit_form()
    if errors:
        return make_response(render_template("partials/edit_form.html", **form_context(values, errors)), 422,
                             retarget="#edit-form", reswap="outerHTML")
    task = ImageTask.create(provider=values["provider"], model=values["model"], prompt=values["prompt"],
                            n=values["n"], seed=random.randint(0, MAX_SEED), width=values["width"],
                            height=values["height"], prompt_extend=values["prompt_extend"],
                            watermark=values["watermark"], source_file=values["source_file"],
                            source_image_id=values["image"] or None)
    current_app.extensions["painter"].submit_waiting()
    return render_template("partials/image_task.html", task=ImageTask.get_by_id(task.id))


def read_edit_form():
    """The edit's values (the source as ?image= or ?attachment= names it), and a sentence per wrong field."""
    form = request.form
    file, image, width, height = source_from(form)
    values = {"source_file": file, "image": image.id if image else "", "source": source_name(form),
              "width": width, "height": height, "prompt": form.get("prompt", "").strip(),
              "provider": form.get("provider", ""), "model": form.get("model", "").strip(),
              "n": to_int(form.get("n", "1")), "prompt_extend": form.get("prompt_extend") == "on",
              "watermark": form.get("watermark") == "on"}
    errors = {}
    limit = prompt_limit(values["model"])
    if not values["prompt"]:
        errors["prompt"] = gettext("请写下想怎么改，例如：把天空改成晚霞。")
    elif len(values["prompt"]) > limit:
        errors["prompt"] = gettext("提示词最多 %(limit)s 字（现在 %(length)s 字）。", limit=limit,
                                   length=format_number(len(values["prompt"])))
    if values["n"] is None or not 1 <= values["n"] <= 4:
        errors["n"] = gettext("张数应为 1–4。")
        values["n"] = 1
    check_provider_and_model(values, errors, gettext("请填写模型名称，例如 wan2.5-i2i-preview。"))
    return values, errors
