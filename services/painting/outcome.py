"""How a painting ends: its final status, what went wrong (a Failure), its cost."""
from models import ImageTask, now
from services import costs
from services.failures import Failure


def settle(task, problems, usages=()):
    """The task's final status from what was kept and what was not; `usages` are what
    OpenRouter's calls reported (their cost)."""
    kept = task.images().count()
    if not kept and not problems:
        problems = [Failure("no_pictures_given")]
    costs.record_painting(task, kept, usages)
    if not problems:
        finish(task, ImageTask.SUCCEEDED)
    elif kept:
        finish(task, ImageTask.PARTIAL,
               Failure("painting_partial", kept=kept, failed=len(problems), problem=problems[0]))
    else:
        finish(task, ImageTask.FAILED, Failure("painting_failed", problem=problems[0]))


def finish(task, status, failure=None):
    """`failure` is saved as its code, shown in the reader's language (services/failures.py)."""
    task.status, task.error, task.finished_at = status, failure.saved if failure else "", now()
    task.lease_until = None
    task.save()
