"""Pictures sent with chat messages: checked, kept on disk with a thumbnail, sent upstream
as base64 data URLs (the providers cannot reach this machine)."""
import base64
import io
import os
import uuid
import warnings

from models import Attachment, now
from services.failures import Failure
from services.painting.files import images_dir, pillow, write_file

MAX_PICTURES = 4  # per message
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 25_000_000  # decoding more would hold the one worker too long
MIN_SIDE = 10  # the vision models refuse smaller pictures
FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}
THUMBNAIL_SIZE = (256, 256)


class BadPicture(Failure):
    """The upload is not a picture we take; str() says why, in the reader's language."""


def read_upload(upload):
    """The bytes of an uploaded file, refused past MAX_BYTES without reading it all."""
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise BadPicture("picture_too_big", name=upload.filename or "?")
    return data


def save_picture(data, name="", message=None):
    """Check `data` (type, size and pixels read from its header, before decoding it) and keep
    it with a thumbnail; return the Attachment (of `message`, else unsent)."""
    if len(data) > MAX_BYTES:
        raise BadPicture("picture_too_big", name=name or "?")
    PILImage = pillow()
    try:
        with warnings.catch_warnings():  # the size is checked just below, with a sentence
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            picture = PILImage.open(io.BytesIO(data))  # lazy: only the header is read
    except Exception:
        picture = None
    if picture is None or picture.format not in FORMATS:
        raise BadPicture("picture_type", name=name or "?")
    width, height = picture.size
    if width * height > MAX_PIXELS or min(width, height) < MIN_SIDE:
        raise BadPicture("picture_pixels", name=name or "?", width=width, height=height, min=MIN_SIDE)
    try:
        small = thumbnail_of(picture)
    except Exception:
        raise BadPicture("picture_broken", name=name or "?") from None
    content_type, extension = FORMATS[picture.format]
    stem = f"uploads/{now():%Y/%m}/{uuid.uuid4().hex}"
    write_file(f"{stem}.{extension}", data)
    write_file(f"thumbs/{stem}.webp", small)
    return Attachment.create(message=message, file=f"{stem}.{extension}", thumbnail=f"thumbs/{stem}.webp",
                             content_type=content_type, width=width, height=height, size=len(data))


def thumbnail_of(picture):
    picture.draft("RGB", THUMBNAIL_SIZE)  # a JPEG decodes at a fraction of its size
    small = picture.convert("RGB")
    small.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    small.save(buffer, "WEBP", quality=78)
    return buffer.getvalue()


def read_picture(relative):
    with open(os.path.join(images_dir(), relative), "rb") as f:
        return f.read()


def data_url(attachment):
    encoded = base64.b64encode(read_picture(attachment.file)).decode("ascii")
    return f"data:{attachment.content_type};base64,{encoded}"


def copy_of_image(image):
    """An unsent attachment holding a gallery picture (its own file: deleting one keeps the other)."""
    return save_picture(read_picture(image.file), f"{image.id}")
