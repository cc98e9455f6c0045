"""The interface language: Simplified Chinese unless the `lang` cookie asks for English."""
from flask import Blueprint, has_request_context, redirect, request

from views import safe_next

bp = Blueprint("language", __name__)

LANGUAGES = {"zh": "zh-CN", "en": "en"}  # cookie value -> <html lang>
DEFAULT = "zh"
COOKIE_AGE = 365 * 24 * 3600


def current():
    """The `lang` cookie's language; outside a request (background threads), the default."""
    if not has_request_context():
        return DEFAULT
    code = request.cookies.get("lang")
    return code if code in LANGUAGES else DEFAULT


def html_lang():
    return LANGUAGES[current()]


@bp.get("/lang/<code>")
def switch(code):
    response = redirect(safe_next(request.args.get("next", "")))
    if code in LANGUAGES:
        response.set_cookie("lang", code, max_age=COOKIE_AGE, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    return response
