"""Export conversations as Markdown or JSON; import a JSON export back."""
import io
import json

from flask import Blueprint, abort, render_template, request, send_file
from flask_babel import gettext

from models import Conversation
from services import exports
from views import NUL_REFUSED, alert

bp = Blueprint("exports", __name__)

MAX_IMPORT_BYTES = 50 * 1024 * 1024


def download(text, name, mimetype):
    return send_file(io.BytesIO(text.encode("utf-8")), mimetype=mimetype, as_attachment=True,
                     download_name=name)


def conversation_or_404(conversation_id):
    return Conversation.get_or_none(Conversation.id == conversation_id) or abort(404)


@bp.get("/c/<int:conversation_id>/export.md")
def markdown(conversation_id):
    conversation = conversation_or_404(conversation_id)
    return download(exports.to_markdown(conversation), f"{conversation.title}.md", "text/markdown")


@bp.get("/c/<int:conversation_id>/export.json")
def one_json(conversation_id):
    conversation = conversation_or_404(conversation_id)
    return download(json.dumps(exports.to_json([conversation]), ensure_ascii=False, indent=1),
                    f"{conversation.title}.json", "application/json")


@bp.get("/export.json")
def all_json():
    conversations = Conversation.select().order_by(Conversation.id)
    return download(json.dumps(exports.to_json(conversations), ensure_ascii=False, indent=1),
                    gettext("墨言-全部对话.json"), "application/json")


@bp.post("/import")
def import_conversations():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return alert(gettext("请选择一个墨言导出的 JSON 文件。"))
    raw = upload.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        return alert(gettext("文件太大（超过 50 MB）。"))
    if b"\\u0000" in raw or b"\x00" in raw:
        return alert(NUL_REFUSED)
    try:
        counts = exports.import_json(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        message = str(exc) if isinstance(exc, exports.NotAnExport) else gettext("文件不是有效的 JSON，没有导入任何内容。")
        return alert(message)
    return render_template("partials/import_result.html", **counts)
