"""The settings editor: keys, regions, base URLs and default models, saved in place."""
from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext

from providers.dashscope import REGIONS
from services import access, open_bind
from services import settings as provider_settings
from views import alert, first_error

bp = Blueprint("settings", __name__, url_prefix="/settings")


def provider_or_404(name):
    if name not in provider_settings.PROVIDERS:
        abort(404)
    return name


def render_section(name, saved="", errors=None, status=200):
    return render_template("partials/provider_settings.html", s=provider_settings.load(name),
                           regions=REGIONS, saved=saved, errors=errors or {}), status


@bp.get("")
def page():
    return render_template("settings.html",
                           sections=[provider_settings.load(n) for n in provider_settings.PROVIDERS],
                           providers=provider_settings.PROVIDERS,
                           chat_provider=provider_settings.chat_provider(),
                           history_pictures=provider_settings.history_pictures(),
                           regions=REGIONS, saved="", errors={},
                           is_password_from_env=access.is_password_from_env())


@bp.post("/<name>")
def save(name):
    errors = provider_settings.save_form(provider_or_404(name), request.form)
    if errors:
        return render_section(name, errors=errors, status=422)
    return render_section(name, saved=gettext("已保存。"))


@bp.post("/<name>/key/delete")
def delete_key(name):
    provider_settings.delete_key(provider_or_404(name))
    return render_section(name, saved=gettext("已删除保存的 API Key。"))


@bp.post("/<name>/test")
def test_connection(name):
    """Test what the form holds now, saved or not."""
    values, errors = provider_settings.read_form(provider_or_404(name), request.form)
    models, error = ([], first_error(errors)) if errors else provider_settings.check_connection(name, values)
    return render_template("partials/connection_result.html", name=name, models=models, error=error)


@bp.post("/general")
def save_general():
    values, errors = provider_settings.save_general(request.form)
    if errors:
        return alert(first_error(errors))
    return render_template("partials/general_settings.html", providers=provider_settings.PROVIDERS,
                           **values, saved=gettext("已保存。"))


@bp.post("/password")
def save_password():
    error = access.save_password(request.form.get("password", ""), request.form.get("password_again", ""))
    if error:
        return render_password(error=error, status=422)
    return render_password(saved=gettext("访问密码已保存，其他浏览器需要用新密码重新登录。"))


@bp.post("/password/delete")
def delete_password():
    if open_bind.is_open_to_network(current_app.config):
        return render_password(error=gettext(
            "墨言正监听网络地址 %(host)s，取消密码会让网络上的任何人都能使用它，所以没有取消。"
            "要取消密码，请先让墨言只监听本机（MOYAN_HOST=127.0.0.1）并重启。",
            host=current_app.config["HOST"]), status=422)
    if not access.is_password_from_env():
        access.set_password(None)
    return render_password(saved=gettext("已取消访问密码。"))


def render_password(error="", saved="", status=200):
    return render_template("partials/password_settings.html", password_error=error, password_saved=saved,
                           is_password_from_env=access.is_password_from_env()), status

