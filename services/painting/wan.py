"""Painting with Wan (DashScope): submit a task, poll it, keep its pictures.

The provider's links expire after 24 hours: every result is downloaded as soon as the task
succeeds. When to poll is the scheduler's (`scheduler.follow`).
"""
import logging

from models import ImageTask, now
from providers import errors
from providers.downloads import download_image
from providers.retry import retried
from services import settings as provider_settings
from services.failures import Failure
from services.painting.files import save_image, source_data_url
from services.painting.outcome import finish, settle

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 3
SUBMIT_OUTCOME_UNKNOWN = Failure("submit_outcome_unknown")
# What the provider's task codes mean (services/failures.py has the sentences); its own
# messages are English and stay in the log.
TASK_CODES = {"InvalidParameter": "task_invalid_parameter",
              "InternalError.Timeout": "task_provider_timeout",
              "InternalError": "task_internal_error"}


def submit(task):
    """Create the provider's task and save its id before anything else; False when the task
    ended instead (refused, or the outcome unknown).

    A submit is billed once the provider has it: when the answer cannot tell whether it
    has (unreadable, or no answer in time), the task ends failed and is never sent again.
    """
    client = provider_settings.client("dashscope")
    try:
        if task.is_edit:
            provider_task_id, request_id = client.submit_edit_task(
                task.model, task.prompt, [source_data_url(task)], task.n, task.seed,
                task.prompt_extend, task.watermark)
        else:
            provider_task_id, request_id = client.submit_image_task(
                task.model, task.prompt, task.negative_prompt, task.size, task.n, task.seed,
                task.prompt_extend, task.watermark)
    except (errors.UnreadableReply, errors.Timeout, errors.ServerBusy) as exc:
        log.warning("image task %s: submit outcome unknown: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
        finish(task, ImageTask.FAILED, SUBMIT_OUTCOME_UNKNOWN)
        return False
    except errors.ProviderError as exc:
        log.warning("image task %s refused: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
        finish(task, ImageTask.FAILED, Failure.of(exc))
        return False
    except Exception:
        log.exception("image task %s: submit failed", task.id)
        finish(task, ImageTask.FAILED, SUBMIT_OUTCOME_UNKNOWN)
        return False
    task.provider_task_id, task.request_id = provider_task_id, request_id
    task.status, task.submitted_at = ImageTask.PENDING, now()
    task.save()
    return True


def follow(task):
    """Poll the task once and act on what the provider says; True once the task has ended.
    A poll that fails raises its ProviderError."""
    output, request_id = provider_settings.client("dashscope").get_task(task.provider_task_id)
    status = output["task_status"]
    if status == "SUCCEEDED":
        keep_results(task, output, request_id)
    elif status == "FAILED":
        finish(task, ImageTask.FAILED, failed_message(output))
    elif status == "CANCELED":
        finish(task, ImageTask.CANCELED, Failure("task_canceled"))
    elif status == "UNKNOWN":
        finish(task, ImageTask.EXPIRED, Failure("task_expired"))
    else:
        if status in ("PENDING", "RUNNING"):
            task.status = status.lower()
        return False
    return True


def failed_message(output):
    """The Failure of a failed task, or of a failed result of a task."""
    code, message = str(output.get("code") or "")[:100], str(output.get("message") or "")[:500]
    log.info("task failure from the provider: %s %s", code, message[:200])
    known = errors.DASHSCOPE_CODES.get(code)
    if known:
        return Failure(known.__name__)
    if code in TASK_CODES:
        return Failure(TASK_CODES[code])
    return Failure("task_failed", code=code or Failure("unknown"))


def keep_results(task, output, request_id):
    """Download every result image now: the links expire after 24 hours."""
    problems = []
    for index, result in enumerate(output.get("results") or []):
        if not isinstance(result.get("url"), str) or not result["url"]:
            problems.append(failed_message(result))
            continue
        try:
            data, content_type = retried(lambda: download_image(result["url"]), DOWNLOAD_ATTEMPTS,
                                         lambda error: isinstance(error, errors.DownloadFailed))
            # `actual_prompt`: the prompt as the provider rewrote it (prompt_extend).
            save_image(task, index, data, content_type, str(result.get("actual_prompt") or ""), request_id)
        except errors.ProviderError as exc:
            log.warning("image %s/%s not kept: %s", task.id, index, exc.__class__.__name__)
            problems.append(Failure.of(exc))
    settle(task, problems)
