"""Painting: submit Wan tasks, follow them to the end on the server, keep the pictures.

The browser only shows what the database says. A `Painter` thread submits waiting
tasks while the account has a free slot (Wan runs about two at a time), polls the
running ones with a growing interval, and downloads every result as soon as a task
succeeds, since the provider's links expire after 24 hours. After a restart it simply
carries on with whatever the database holds.

Every server process has a painter. Each acts on a task only under a lease in the
database (`ImageTask.lease_owner`, `lease_until`), kept while it follows the task, so
exactly one process follows and downloads it; when that process dies, its lease runs
out and another takes the task over. A single process (no REDIS_URL) frees every lease
at start: they can only be its own, from before a restart.
"""
import base64
import datetime
import io
import logging
import os
import socket
import threading
import time
import uuid

from flask import current_app
from flask_babel import lazy_gettext
from PIL import Image as PILImage

from db import SUBMIT_LOCK, database, one_process_at_a_time
from models import Image, ImageTask, now
from providers import errors
from providers.downloads import decode_data_url, download_image
from services import costs
from services import settings as provider_settings
from services.failures import Failure

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = (384, 384)
DOWNLOAD_ATTEMPTS = 3
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# The largest side each provider paints (Wan: 1440; OpenRouter's models: 4096). A bigger
# picture is a broken or hostile file: a 150 KB PNG can decode to 12000 x 12000.
MAX_SIDE = {"dashscope": 1440, "openrouter": 4096}
# A backstop: Pillow refuses twice this before decoding. Each use checks its own, lower limit
# from the header first (results: the provider's largest side; uploads: services/attachments.py).
PILImage.MAX_IMAGE_PIXELS = 25_000_000

SUBMIT_OUTCOME_UNKNOWN = Failure("submit_outcome_unknown")


class Painter:
    def __init__(self, app):
        self.app = app
        self.wake = threading.Event()
        self.is_stopping = False
        self.submit_lock = threading.Lock()
        self.thread = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.openrouter_tasks = set()  # ids of this process's OpenRouter calls under way

    def start(self):
        self.thread = threading.Thread(target=self.run, name="painter", daemon=True)
        self.thread.start()

    def stop(self):
        self.is_stopping = True
        self.wake.set()
        if self.thread:
            self.thread.join(5)

    def run(self):
        with self.app.app_context():
            if not self.app.config["REDIS_URL"]:
                with database.connection_context():
                    release_leases()
            while not self.is_stopping:
                try:
                    with database.connection_context():
                        self.step()
                except Exception:
                    log.exception("painter step failed")
                self.wake.wait(self.app.config["IMAGE_POLL_INTERVAL"] / 2)
                self.wake.clear()

    def step(self):
        self.renew_openrouter_leases()
        interrupt_openrouter_tasks()
        self.submit_waiting()
        for task in ImageTask.due():
            if self.is_stopping:
                return
            if claim(task, self.owner):
                try:
                    follow(task)
                except Exception:  # one task's trouble must not stall the others
                    log.exception("following image task %s failed", task.id)
                    postpone(task)

    def submit_waiting(self):
        """Submit the oldest waiting tasks while the account has free slots (counted over
        every process: one process at a time counts and submits)."""
        if not ImageTask.select().where(ImageTask.status == ImageTask.WAITING).exists():
            return  # the usual case, checked without taking the lock
        with self.submit_lock, one_process_at_a_time(SUBMIT_LOCK):
            for task in ImageTask.waiting():
                if task.provider == "openrouter":
                    if claim(task, self.owner):
                        self.start_openrouter(task)
                elif has_free_slot() and claim(task, self.owner):
                    submit(task)

    def start_openrouter(self, task):
        task.status, task.submitted_at = ImageTask.RUNNING, now()
        task.save()
        self.openrouter_tasks.add(task.id)
        threading.Thread(target=self.paint_with_openrouter, args=(task.id,), daemon=True,
                         name=f"openrouter-image-{task.id}").start()

    def paint_with_openrouter(self, task_id):
        try:
            with self.app.app_context(), database.connection_context():
                paint_with_openrouter(ImageTask.get_by_id(task_id))
        finally:
            self.openrouter_tasks.discard(task_id)

    def renew_openrouter_leases(self):
        """An OpenRouter painting is one long call: its lease is renewed while it lasts."""
        if self.openrouter_tasks:
            (ImageTask.update(lease_until=lease_end(now()))
             .where(ImageTask.id.in_(list(self.openrouter_tasks)) & (ImageTask.lease_owner == self.owner))
             .execute())


def lease_end(start):
    return start + datetime.timedelta(seconds=current_app.config["IMAGE_LEASE"])


def claim(task, owner):
    """Take the lease of `task` unless another process holds a live one; True if taken."""
    until = lease_end(now())
    is_free = ImageTask.lease_has_run_out() | (ImageTask.lease_owner == owner)
    taken = (ImageTask.update(lease_owner=owner, lease_until=until)
             .where((ImageTask.id == task.id) & ImageTask.status.in_(ImageTask.ACTIVE) & is_free)
             .execute())
    if taken:
        task.lease_owner, task.lease_until = owner, until
    return bool(taken)


def release_leases():
    ImageTask.update(lease_until=None).where(ImageTask.status.in_(ImageTask.ACTIVE)).execute()


def has_free_slot():
    return ImageTask.busy_count() < current_app.config["IMAGE_CONCURRENCY"]


def interrupt_openrouter_tasks():
    """An OpenRouter painting is one long call with no task id: when the process making it
    has stopped (its lease ran out), it is lost."""
    orphaned = ((ImageTask.provider == "openrouter") & (ImageTask.status == ImageTask.RUNNING)
                & ImageTask.lease_has_run_out())
    if ImageTask.select().where(orphaned).exists():  # read first: a write would lock SQLite
        (ImageTask.update(status=ImageTask.FAILED, finished_at=now(),
                          error=Failure("painting_interrupted").saved)
         .where(orphaned).execute())


def submit(task):
    """Create the provider's task and save its id before anything else.

    A submit is billed once the provider has it: when the answer cannot tell whether it
    has (unreadable, or no answer in time), the task ends failed and is never sent again.
    """
    client = provider_settings.client("dashscope")
    try:
        if task.is_edit:
            task_id, request_id = client.submit_edit_task(
                task.model, task.prompt, [source_data_url(task)], task.n, task.seed,
                task.prompt_extend, task.watermark)
        else:
            task_id, request_id = client.submit_image_task(
                task.model, task.prompt, task.negative_prompt, task.size, task.n, task.seed,
                task.prompt_extend, task.watermark)
    except (errors.UnreadableReply, errors.Timeout, errors.ServerBusy) as exc:
        log.warning("image task %s: submit outcome unknown: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
        finish(task, ImageTask.FAILED, SUBMIT_OUTCOME_UNKNOWN)
        return
    except errors.ProviderError as exc:
        log.warning("image task %s refused: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
        finish(task, ImageTask.FAILED, Failure.of(exc))
        return
    except Exception:
        log.exception("image task %s: submit failed", task.id)
        finish(task, ImageTask.FAILED, SUBMIT_OUTCOME_UNKNOWN)
        return
    task.task_id, task.request_id = task_id, request_id
    task.status, task.submitted_at = ImageTask.PENDING, now()
    task.next_poll_at = now() + poll_delay(0)
    task.lease_until = lease_end(task.next_poll_at)  # kept until the next poll, and a margin
    task.save()


def follow(task):
    """Poll the task once and act on what the provider says."""
    client = provider_settings.client("dashscope")
    try:
        output, request_id = client.get_task(task.task_id)
    except errors.ProviderError as exc:
        log.warning("polling image task %s: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
        postpone(task, exc)
        return
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
        postpone(task)


def postpone(task, problem=None):
    """Poll again a little later each time, or give up once the task is too old. `problem`:
    the error of the poll that just failed, if it did."""
    if is_too_old(task):
        if isinstance(problem, errors.UnreadableReply):
            finish(task, ImageTask.FAILED, Failure("polls_unreadable"))
            return
        minutes = current_app.config["IMAGE_TASK_TIMEOUT"] // 60
        finish(task, ImageTask.FAILED, Failure("task_timed_out", minutes=minutes))
        return
    task.polls += 1
    task.next_poll_at = now() + poll_delay(task.polls)
    task.lease_until = lease_end(task.next_poll_at)
    task.save()


def poll_delay(polls):
    base = current_app.config["IMAGE_POLL_INTERVAL"]
    return datetime.timedelta(seconds=min(base * 1.25 ** polls, 15))


def is_too_old(task):
    started = task.submitted_at or task.created_at
    return (now() - started).total_seconds() > current_app.config["IMAGE_TASK_TIMEOUT"]


# What the provider's task codes mean (services/failures.py has the sentences).
TASK_CODES = {"InvalidParameter": "task_invalid_parameter",
              "InternalError.Timeout": "task_provider_timeout",
              "InternalError": "task_internal_error"}


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
            data, content_type = download_with_retries(result["url"])
            save_image(task, index, data, content_type, str(result.get("actual_prompt") or ""), request_id)
        except errors.ProviderError as exc:
            log.warning("image %s/%s not kept: %s", task.id, index, exc.__class__.__name__)
            problems.append(Failure.of(exc))
    settle(task, problems)


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


def download_with_retries(url):
    for attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            return download_image(url)
        except errors.DownloadFailed:
            if attempt == DOWNLOAD_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * 2 ** attempt)


def finish(task, status, failure=None):
    """`failure` is saved as its code, shown in the reader's language (services/failures.py)."""
    task.status, task.error, task.finished_at = status, failure.saved if failure else "", now()
    task.lease_until = None
    task.save()


def paint_with_openrouter(task):
    """One call per picture asked for: an OpenRouter image model answers each call with one."""
    client = provider_settings.client("openrouter")
    problems, usages = [], []
    for index in range(task.n):
        try:
            picture = source_data_url(task) if task.is_edit else None
            urls, generation_id, usage = client.generate_images(task.model, openrouter_prompt(task),
                                                                aspect_ratio(task.width, task.height), picture)
            task.request_id = generation_id
            usages.append(usage)
            if urls:
                save_image(task, index, *decode_data_url(urls[0]), "", generation_id)
            else:
                problems.append(Failure("text_instead_of_picture"))
        except errors.ProviderError as exc:
            log.warning("OpenRouter image task %s: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
            problems.append(Failure.of(exc))
            if not exc.is_retryable:
                problems += [Failure.of(exc)] * (task.n - index - 1)  # the next calls would fail alike
                break
        except Exception:
            log.exception("OpenRouter image task %s failed", task.id)
            problems.append(Failure("painting_broke"))
            break
    settle(task, problems, usages)


def openrouter_prompt(task):
    if task.negative_prompt:
        return f"{task.prompt}\n\n画面中不要出现：{task.negative_prompt}"
    return task.prompt


def aspect_ratio(width, height):
    ratios = {"1:1": 1, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4, "3:2": 1.5, "2:3": 2 / 3}
    return min(ratios, key=lambda name: abs(ratios[name] - width / height))


def images_dir():
    return os.path.join(current_app.config["DATA_DIR"], "images")


class SourceGone(errors.ProviderError):
    user_message = lazy_gettext("要修改的图片已经不在了（可能已被删除），请换一张图片再试。")


def source_data_url(task):
    try:
        return file_data_url(task.source_file)
    except OSError:
        raise SourceGone("source file missing") from None


def file_data_url(relative):
    """A picture of the images folder as a data URL: the providers cannot reach this machine."""
    content_type = next(t for t, extension in EXTENSIONS.items() if relative.endswith("." + extension))
    with open(os.path.join(images_dir(), relative), "rb") as f:
        return f"data:{content_type};base64,{base64.b64encode(f.read()).decode('ascii')}"


def save_image(task, index, data, content_type, actual_prompt, request_id):
    """Write the original bytes as they came and a small WebP thumbnail; record both."""
    picture = opened_image(data, MAX_SIDE.get(task.provider, max(MAX_SIDE.values())))
    folder = now().strftime("%Y/%m")
    name = f"{task.id}-{index}-{uuid.uuid4().hex[:8]}"
    file = f"{folder}/{name}.{EXTENSIONS[content_type]}"
    thumbnail = f"thumbs/{folder}/{name}.webp"
    write_file(file, data)
    small = picture.convert("RGB")
    small.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    small.save(buffer, "WEBP", quality=78)
    write_file(thumbnail, buffer.getvalue())
    return Image.create(task=task, index=index, file=file, thumbnail=thumbnail,
                        content_type=content_type, width=picture.width, height=picture.height,
                        prompt=task.prompt, negative_prompt=task.negative_prompt,
                        actual_prompt=actual_prompt, seed=None if task.seed is None else task.seed + index,
                        model=task.model, provider=task.provider, task_id=task.task_id,
                        request_id=request_id)


def opened_image(data, max_side):
    """The decoded picture, refused unless it is an image no larger than `max_side` a side:
    its size is read from the header, before the pixels are decoded."""
    try:
        picture = PILImage.open(io.BytesIO(data))
    except PILImage.DecompressionBombError:
        raise errors.ImageTooLarge("over Pillow's pixel limit") from None
    except Exception as exc:
        raise errors.NotAnImage(exc.__class__.__name__) from None
    if max(picture.size) > max_side:
        raise errors.ImageTooLarge("%sx%s" % picture.size)
    try:
        picture.load()
    except Exception as exc:
        raise errors.NotAnImage(exc.__class__.__name__) from None
    return picture


def write_file(relative, data):
    path = os.path.join(images_dir(), relative)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)


def delete_image(image):
    for relative in (image.file, image.thumbnail):
        try:
            os.remove(os.path.join(images_dir(), relative))
        except FileNotFoundError:
            pass
    image.delete_instance()
