"""The interface language: Simplified Chinese unless the `lang` cookie asks for English."""
import functools

from flask import Blueprint, has_request_context, redirect, request
from flask_babel import get_translations
from jinja2.ext import _make_new_gettext, _make_new_ngettext

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


def template_gettext():
    """A context processor: the templates' `_`/`gettext`/`ngettext`, bound to the reader's
    translations once per render. Flask-Babel's own look the translations up again for every
    string (a page has about 150): 7 % of the CPU of a whole answer, page included."""
    return bound_gettext(get_translations())


@functools.lru_cache(maxsize=8)
def bound_gettext(translations):
    # Jinja's own wrappers (as `install_gettext_callables(newstyle=True)` makes): escaping
    # and %(name)s variables exactly as the global ones.
    return {"gettext": _make_new_gettext(translations.ugettext),
            "ngettext": _make_new_ngettext(translations.ungettext)}


@bp.get("/lang/<code>")
def switch(code):
    response = redirect(safe_next(request.args.get("next", "")))
    if code in LANGUAGES:
        response.set_cookie("lang", code, max_age=COOKIE_AGE, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    return response
