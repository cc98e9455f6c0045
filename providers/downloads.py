"""Fetching result images from the links a provider returned."""
import base64
import binascii

import requests

from providers import errors

MAX_IMAGE_BYTES = 30 * 1024 * 1024
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp"}


def download_image(url, timeout=(10, 60), max_bytes=MAX_IMAGE_BYTES):
    """The bytes and content type at `url`, a presigned link from the provider.

    Sent without our Authorization header (another service; the key would leak) and
    with the URL unchanged (re-encoding it breaks the signature).
    """
    try:
        with requests.get(url, stream=True, timeout=timeout, allow_redirects=False) as response:
            if response.status_code == 403 and b"expired" in response.content[:4096].lower():
                raise errors.ImageLinkExpired("403 expired")
            if response.status_code != 200:
                raise errors.DownloadFailed(f"HTTP {response.status_code}")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type not in IMAGE_TYPES:
                raise errors.NotAnImage(content_type or "no content type")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise errors.NotAnImage("too large")
            return bytes(body), content_type
    except requests.RequestException as exc:
        raise errors.DownloadFailed(exc.__class__.__name__) from exc


def decode_data_url(url, max_bytes=MAX_IMAGE_BYTES):
    """The bytes and content type of a `data:image/png;base64,...` URL."""
    header, _, payload = url.partition(",")
    content_type = header[len("data:"):].split(";")[0].lower()
    if not header.startswith("data:") or ";base64" not in header or content_type not in IMAGE_TYPES:
        raise errors.NotAnImage("not a base64 image data URL")
    if len(payload) > max_bytes * 4 // 3 + 4:
        raise errors.NotAnImage("too large")
    try:
        return base64.b64decode(payload, validate=True), content_type
    except (binascii.Error, ValueError):
        raise errors.NotAnImage("bad base64") from None
