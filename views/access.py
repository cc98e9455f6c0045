"""Logging in and out, when an access password is set."""
from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_htmx import make_response

from services import access
from views import safe_next

bp = Blueprint("access", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.values.get("next", ""))
    if not access.is_password_set():
        return redirect(next_url)
    error = ""
    if request.method == "POST":
        error = access.try_login(request.form.get("password", ""))
        if not error:
            return redirect(next_url)
    return render_template("login.html", error=error, next_url=next_url), 401 if error else 200


@bp.post("/logout")
def logout():
    access.end_session()  # on the server too: a copy of the cookie no longer opens anything
    session.clear()
    return make_response("", redirect=url_for("access.login"))
