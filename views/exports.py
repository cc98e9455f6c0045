"""Export conversations as Markdown or JSON; import a JSON export back (in the background)."""
import io
import json

from flask import Blueprint, render_template, request, send_file
from flask_babel import gettext, lazy_gettext

from models import Conversation, ImportJob
from services import exports
from views import NUL_REFUSED, alert, get_or_404

bp = Blueprint("exports", __name__)

MAX_IMPORT_BYTES = 50 * 1024 * 1024
TOO_LARGE = lazy_gettext("文件太大（超过 50 MB）。")


def download(text, name, mimetype):
    return send_file(io.BytesIO(text.encode("utf-8")), mimetype=mimetype, as_attachment=True,
                     download_name=name)


@bp.get("/c/<int:conversation_id>/export.md")
def markdown(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    return download(exports.to_markdown(conversation), exports.file_name(conversation.title, "md"),
                    "text/markdown")


@bp.get("/c/<int:conversation_id>/export.json")
def one_json(conversation_id):
    conversation = get_or_404(Conversation, conversation_id)
    return download(json.dumps(exports.to_json([conversation]), ensure_ascii=False, indent=1),
                    exports.file_name(conversation.title, "json"), "application/json")


@bp.get("/export.json")
def all_json():
    conversations = Conversation.select().order_by(Conversation.id)
    return download(json.dumps(exports.to_json(conversations), ensure_ascii=False, indent=1),
                    gettext("墨言-全部对话.json"), "application/json")


@bp.post("/import")
def import_conversations():
    """Start the import and answer at once; the answer polls the job until it ends."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return alert(gettext("请选择一个墨言导出的 JSON 文件。"))
    raw = upload.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        return alert(TOO_LARGE)
    if b"\\u0000" in raw or b"\x00" in raw:
        return alert(NUL_REFUSED)
    return render_template("partials/import_job.html", job=exports.start_import(raw))


@bp.get("/import/<int:job_id>")
def import_job(job_id):
    return render_template("partials/import_job.html", job=get_or_404(ImportJob, job_id))
