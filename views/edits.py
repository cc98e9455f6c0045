"""Image editing ("改这张图"): an instruction and a picture from the gallery or the chat make a
new picture, followed by the painter like any painting."""
from flask import Blueprint, abort, current_app, render_template, request
from flask_htmx import make_response

from models import Attachment, Image, ImageTask
from services import settings as provider_settings
from services.painting.form import EditForm
from views import get_or_404, to_id

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


def source_values(args):
    """The picture to change, as the form's values: its file, size and gallery Image (or
    None), and the field that names it."""
    file, image, width, height = source_from(args)
    return {"source_file": file, "source_image": image, "width": width, "height": height,
            "source": source_name(args)}


def form_context(values, errors=None):
    return {"values": values, "errors": errors or {}, "providers": provider_settings.PROVIDERS,
            "model_choices": {"dashscope": WAN_EDIT_MODELS,
                              "openrouter": provider_settings.load("openrouter").image_models},
            "default_models": {name: provider_settings.load(name).edit_model for name in provider_settings.PROVIDERS}}


def default_values(args):
    """The form for a source, filled in as the earlier edit was for ?from= ("再画一次")."""
    values = source_values(args)
    earlier = get_or_404(Image, args["from"]).task if to_id(args.get("from")) else None
    if earlier is not None:
        return {**values, "prompt": earlier.prompt, "n": earlier.n, "provider": earlier.provider,
                "model": earlier.model, "prompt_extend": earlier.prompt_extend, "watermark": earlier.watermark}
    image = values["source_image"]
    provider = image.provider if image else provider_settings.chat_provider()
    return {**values, "prompt": "", "n": 1, "provider": provider, "model": provider_settings.load(provider).edit_model,
            "prompt_extend": True, "watermark": False}


@bp.get("/images/edit")
def page():
    values = default_values(request.args)
    return render_template("image_edit.html", tasks=ImageTask.edits_of(values["source_file"]), **form_context(values))


@bp.post("/images/edit")
def submit():
    form = EditForm(request.form, source_values(request.form))
    if form.errors:
        return make_response(render_template("partials/edit_form.html", **form_context(form.values, form.errors)),
                             422, retarget="#edit-form", reswap="outerHTML")
    return render_template("partials/image_task.html", task=current_app.extensions["painter"].add(form.fields))
