"""Moyan (墨言): chat with Qwen and friends, paint with Wan."""
import logging
import os

from flask import Flask, render_template
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

import models
from providers.dashscope import DEFAULT_BASE_URL as DASHSCOPE_BASE_URL
from providers.openrouter import DEFAULT_BASE_URL as OPENROUTER_BASE_URL
from services.markdown import render as render_markdown
from services.images import Painter
from views import chat, compress, htmx, images, settings


def config_from_env():
    env = os.environ.get
    data_dir = env("MOYAN_DATA_DIR", "data")
    return {
        "DATA_DIR": data_dir,
        "DATABASE_URL": f"sqlite:///{os.path.join(data_dir, 'moyan.db')}",
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
    }


def create_app(config=None):
    app = Flask(__name__)
    app.config.from_mapping(config_from_env())
    app.config.update(config or {})
    os.makedirs(app.config["DATA_DIR"], mode=0o700, exist_ok=True)
    partials = FileSystemLoader(os.path.join(app.root_path, "partials"))
    app.jinja_loader = ChoiceLoader([app.jinja_loader, PrefixLoader({"partials": partials})])
    app.jinja_env.filters["markdown"] = render_markdown

    models.init_db(app.config["DATABASE_URL"])
    with models.db.connection_context():
        models.Message.mark_interrupted()
    app.before_request(models.open_db)
    app.teardown_request(models.close_db)
    app.after_request(compress)

    htmx.init_app(app)
    for bp in (chat.bp, images.bp, settings.bp):
        app.register_blueprint(bp)
    app.extensions["painter"] = Painter(app)
    if app.config.get("IMAGE_WORKER", True):
        app.extensions["painter"].start()
    app.register_error_handler(404, lambda e: (render_template("not_found.html"), 404))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app
