"""How a painting ends: its final status, the sentence saying what went wrong, its cost."""
from flask_babel import gettext

from models import ImageTask, now
from services import costs


def settle(task, problems, usages=()):
    """The task's final status from what was kept and what was not; `usages` are what
    OpenRouter's calls reported (their cost)."""
    kept = task.images().count()
    if not kept and not problems:
        problems = [gettext("服务商说已经画完，却没有给出任何图片。请重新提交。")]
    costs.record_painting(task, kept, usages)
    if not problems:
        finish(task, ImageTask.SUCCEEDED)
    elif kept:
        finish(task, ImageTask.PARTIAL,
               gettext("生成了 %(kept)s 张，另有 %(failed)s 张失败：%(problem)s", kept=kept,
                       failed=len(problems), problem=problems[0]))
    else:
        finish(task, ImageTask.FAILED, gettext("没有得到图片：%(problem)s", problem=problems[0]))


def finish(task, status, error=""):
    # The sentence is saved in the language current now: the source language (Chinese) in the
    # painter's thread, the reader's language when a request submitted the task. Fixed
    # sentences are shown translated (the `translated` filter); ones quoting a count or the
    # provider's words stay as saved.
    task.status, task.error, task.finished_at = status, str(error), now()
    task.lease_until = None
    task.save()
