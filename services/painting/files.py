"""The pictures on disk: originals as they came and small WebP thumbnails, in the images
folder of the data folder, and their rows."""
import base64
import io
import os
import uuid

from flask import current_app
from flask_babel import lazy_gettext

from models import Image, now
from providers import errors

THUMBNAIL_SIZE = (384, 384)
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# The largest side each provider paints (Wan: 1440; OpenRouter's models: 4096). A bigger
# picture is a broken or hostile file: a 150 KB PNG can decode to 12000 x 12000.
MAX_SIDE = {"dashscope": 1440, "openrouter": 4096}


def pillow():
    """Pillow's Image module, imported at the first picture (about 20 ms, once) instead of at
    start: 2 MB that a worker which only chats never needs. Its pixel limit is a backstop:
    Pillow refuses twice it before decoding; each use checks its own, lower limit from the
    header first (results: the provider's largest side; uploads: services/attachments.py)."""
    from PIL import Image as PILImage
    PILImage.MAX_IMAGE_PIXELS = 25_000_000
    return PILImage


def images_dir():
    return os.path.join(current_app.config["DATA_DIR"], "images")


class SourceGone(errors.ProviderError):
    user_message = lazy_gettext("要修改的图片已经不在了（可能已被删除），请换一张图片再试。")


def source_data_url(task):
    """The picture an edit changes, as a data URL."""
    try:
        return file_data_url(task.source_file)
    except OSError:
        raise SourceGone("source file missing") from None


def file_data_url(relative):
    """A picture of the images folder as a data URL: the providers cannot reach this machine."""
    content_type = next(t for t, extension in EXTENSIONS.items() if relative.endswith("." + extension))
    with open(os.path.join(images_dir(), relative), "rb") as f:
        return f"data:{content_type};base64,{base64.b64encode(f.read()).decode('ascii')}"


def save_image(task, index, data, content_type, rewritten_prompt, request_id):
    """Write the original bytes as they came and a small WebP thumbnail; record both."""
    picture = opened_image(data, MAX_SIDE.get(task.provider, max(MAX_SIDE.values())))
    folder = now().strftime("%Y/%m")
    name = f"{task.id}-{index}-{uuid.uuid4().hex[:8]}"
    file = f"{folder}/{name}.{EXTENSIONS[content_type]}"
    thumbnail = f"thumbs/{folder}/{name}.webp"
    write_file(file, data)
    small = picture.convert("RGB")
    small.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    small.save(buffer, "WEBP", quality=78)
    write_file(thumbnail, buffer.getvalue())
    return Image.create(task=task, index=index, file=file, thumbnail=thumbnail,
                        content_type=content_type, width=picture.width, height=picture.height,
                        prompt=task.prompt, negative_prompt=task.negative_prompt,
                        rewritten_prompt=rewritten_prompt, seed=None if task.seed is None else task.seed + index,
                        model=task.model, provider=task.provider, provider_task_id=task.provider_task_id,
                        request_id=request_id)


def opened_image(data, max_side):
    """The decoded picture, refused unless it is an image no larger than `max_side` a side:
    its size is read from the header, before the pixels are decoded."""
    PILImage = pillow()
    try:
        picture = PILImage.open(io.BytesIO(data))
    except PILImage.DecompressionBombError:
        raise errors.ImageTooLarge("over Pillow's pixel limit") from None
    except Exception as exc:
        raise errors.NotAnImage(exc.__class__.__name__) from None
    if max(picture.size) > max_side:
        raise errors.ImageTooLarge("%sx%s" % picture.size)
    try:
        picture.load()
    except Exception as exc:
        raise errors.NotAnImage(exc.__class__.__name__) from None
    return picture


def write_file(relative, data):
    path = os.path.join(images_dir(), relative)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)


def delete_image(image):
    for relative in (image.file, image.thumbnail):
        try:
            os.remove(os.path.join(images_dir(), relative))
        except FileNotFoundError:
            pass
    image.delete_instance()
