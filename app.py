"""Moyan (墨言): chat with Qwen and friends, paint with Wan."""
import logging
import os

import click
from flask import Flask, render_template
from flask.cli import ScriptInfo
from flask_babel import Babel, format_number, lazy_gettext
from flask_compress import Compress
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader
from werkzeug.middleware.proxy_fix import ProxyFix
from whitenoise import WhiteNoise

import db
from providers.dashscope import DEFAULT_BASE_URL as DASHSCOPE_BASE_URL
from providers.openrouter import DEFAULT_BASE_URL as OPENROUTER_BASE_URL
from services import access, backup, move, open_bind
from services.failures import error_text
from services.generation import Generations
from services.painting.scheduler import Painter
from views import access as access_views
from views import language
from views import (alert, answer_html, chat, current_theme, edits, exports, htmx, images, refuse_nul,
                   settings, usage)


def config_from_env():
    env = os.environ.get
    data_dir = env("MOYAN_DATA_DIR", "data")
    return {
        "DATA_DIR": data_dir,
        "DATABASE_URL": open_bind.database_url(os.environ),
        "REDIS_URL": env("REDIS_URL", ""),
        "DASHSCOPE_API_KEY": env("DASHSCOPE_API_KEY", ""),
        "OPENROUTER_API_KEY": env("OPENROUTER_API_KEY", ""),
        "DASHSCOPE_BASE_URL": env("MOYAN_DASHSCOPE_BASE_URL", DASHSCOPE_BASE_URL),
        "OPENROUTER_BASE_URL": env("MOYAN_OPENROUTER_BASE_URL", OPENROUTER_BASE_URL),
        "CONNECT_TIMEOUT": float(env("MOYAN_CONNECT_TIMEOUT", "10")),
        "READ_TIMEOUT": float(env("MOYAN_READ_TIMEOUT", "60")),
        "RETRY_DELAY": float(env("MOYAN_RETRY_DELAY", "1")),
        "IMAGE_CONCURRENCY": int(env("MOYAN_IMAGE_CONCURRENCY", "2")),
        "IMAGE_POLL_INTERVAL": float(env("MOYAN_IMAGE_POLL_INTERVAL", "2")),
        "IMAGE_TASK_TIMEOUT": int(env("MOYAN_IMAGE_TASK_TIMEOUT", "900")),
        "IMAGE_LEASE": float(env("MOYAN_IMAGE_LEASE", "60")),
        "HOST": env("MOYAN_HOST", "127.0.0.1"),
        "PROXIES": int(env("MOYAN_PROXIES", "0")),
        "PASSWORD": env("MOYAN_PASSWORD", ""),
        "ALLOW_OPEN": env("MOYAN_ALLOW_OPEN", "") == "1",
        "TRUSTED_HOSTS": trusted_hosts(env("MOYAN_HOST", "127.0.0.1"), env("MOYAN_TRUSTED_HOSTS", "")),
        "LOGIN_FAILURE_DELAY": 1.0,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "PERMANENT_SESSION_LIFETIME": 30 * 24 * 3600,
        # The largest thing anyone sends is an import (views/exports.py), plus its form's framing.
        "MAX_CONTENT_LENGTH": exports.MAX_IMPORT_BYTES + 1024 * 1024,
    }


# Pages and fragments are gzipped at level 3 (a third of level 6's time, a few per cent bigger);
# nothing else: each event of an answer (text/event-stream) goes out as it comes, and static
# files never reach Flask: WhiteNoise serves them, gzipped once at level 9 by `make install`.
COMPRESSION = {
    "COMPRESS_MIMETYPES": ["text/html"],
    "COMPRESS_ALGORITHM": "gzip",
    "COMPRESS_LEVEL": 3,
    "COMPRESS_STREAMS": False,
}


def trusted_hosts(host, listed):
    """Host names the app answers to, against DNS rebinding. Bound to every address
    (0.0.0.0), any name is accepted unless MOYAN_TRUSTED_HOSTS lists them."""
    if listed:
        return [name.strip() for name in listed.split(",") if name.strip()]
    if host in ("0.0.0.0", "::"):
        return None
    return sorted({host, "127.0.0.1", "localhost", "::1"})


def create_app(config=None):
    app = Flask(__name__)
    app.config.from_mapping(config_from_env(), **COMPRESSION)
    app.config.update(config or {})
    os.makedirs(app.config["DATA_DIR"], mode=0o700, exist_ok=True)
    partials = FileSystemLoader(os.path.join(app.root_path, "partials"))
    app.jinja_loader = ChoiceLoader([app.jinja_loader, PrefixLoader({"partials": partials})])
    Babel(app, locale_selector=language.current, default_locale=language.DEFAULT)
    app.context_processor(language.template_gettext)
    app.jinja_env.filters.update(number=format_number, error_text=error_text)
    app.jinja_env.globals.update(html_lang=language.html_lang, language=language.current,
                                 answer_html=answer_html)

    app.session_interface = access.SessionInterface()
    app.before_request(access.refuse_untrusted_host)
    db.init_app(app)
    app.before_request(access.protect)
    app.before_request(refuse_nul)
    app.after_request(access.add_security_headers)
    app.jinja_env.globals.update(csrf_token=access.csrf_token, is_password_set=access.is_password_set,
                                 current_theme=current_theme)
    Compress(app)

    # Static files, with the .gz made by `make install` for browsers that take gzip (the chat
    # page's first load stays under 40 KB) and no work per request in the app; revalidated
    # on each visit (no max-age), as Flask served them.
    app.wsgi_app = WhiteNoise(app.wsgi_app, root=app.static_folder, prefix=app.static_url_path,
                              max_age=None, add_headers_function=access.set_security_headers)
    if app.config["PROXIES"]:
        # Behind nginx: the client's address and scheme come from X-Forwarded-For/-Proto
        # (login throttling, Secure cookies), trusted only from that many proxies.
        hops = app.config["PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    htmx.init_app(app)
    for bp in (access_views.bp, chat.bp, edits.bp, exports.bp, images.bp, language.bp, settings.bp, usage.bp):
        app.register_blueprint(bp)
    for command in (backup.backup_command, backup.restore_command, move.move_command):
        app.cli.add_command(command)
    app.register_error_handler(404, lambda e: (render_template("not_found.html"), 404))
    app.register_error_handler(413, lambda e: alert(exports.TOO_LARGE, 413))
    app.register_error_handler(500, lambda e: alert(lazy_gettext("出了点问题，这次操作没有完成。请刷新页面后重试。"), 500))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("peewee").setLevel(logging.INFO)  # its debug lines carry query values: keys
    if not is_made_by_flask_command():
        start(app)
    return app


def is_made_by_flask_command():
    """Whether the `flask` command is making the app for one of its commands (flask --app app
    backup). Those open what they need themselves and leave a running Moyan alone: no
    database made where a backup is restored, no answers marked interrupted, no painter."""
    context = click.get_current_context(silent=True)
    return context is not None and context.find_object(ScriptInfo) is not None


def start(app):
    """Open the database and start the background work: what serving needs."""
    db.init_db(app.config["DATABASE_URL"])
    app.extensions["generations"] = Generations(app.config["REDIS_URL"])
    with app.app_context(), db.database.connection_context():
        app.extensions["generations"].interrupt_orphans()
        app.secret_key = access.secret_key()
        app.config["SESSION_COOKIE_NAME"] = access.cookie_name(app.secret_key)
        access.check_open_bind(app.config)
    app.extensions["painter"] = Painter(app)
    if app.config.get("IMAGE_WORKER", True):
        app.extensions["painter"].start()
