"""The painter: which task is submitted, polled or painted now, and by which process.

Every server process runs a `Painter` thread. It submits waiting tasks while the account has
a free slot (Wan runs about two at a time), polls the running ones with a growing interval,
and after a restart simply carries on with whatever the database holds.

Leases are how several processes share the tasks: over PostgreSQL (and Redis) several
workers each run a Painter on the same rows. A process acts on a task only while it holds
the task's lease in the database (`ImageTask.lease_owner`: which process; `lease_until`:
until when), renewed while it follows the task, so exactly one process polls and downloads
it; when that process dies, its lease runs out and another takes the task over. A single
process (no REDIS_URL) frees every lease at start: they can only be its own, from before a
restart.
"""
import datetime
import logging
import os
import socket
import threading
import uuid

from flask import current_app

from db import SUBMIT_LOCK, database, one_process_at_a_time
from models import ImageTask, now
from providers import errors
from services.failures import Failure
from services.painting import openrouter, wan
from services.painting.outcome import finish

log = logging.getLogger(__name__)

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

    def add(self, fields):
        """A new task of `fields`, submitted at once when a slot is free; the task as saved."""
        task = ImageTask.create(**fields)
        self.submit_waiting()
        return ImageTask.get_by_id(task.id)

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
                follow(task)

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
                elif has_free_slot() and claim(task, self.owner) and wan.submit(task):
                    schedule_poll(task)

    def start_openrouter(self, task):
        task.status, task.submitted_at = ImageTask.RUNNING, now()
        task.save()
        self.openrouter_tasks.add(task.id)
        threading.Thread(target=self.run_openrouter_task, args=(task.id,), daemon=True,
                         name=f"openrouter-image-{task.id}").start()

    def run_openrouter_task(self, image_task_id):
        try:
            with self.app.app_context(), database.connection_context():
                openrouter.paint(ImageTask.get_by_id(image_task_id))
        finally:
            self.openrouter_tasks.discard(image_task_id)

    def renew_openrouter_leases(self):
        """An OpenRouter painting is one long call: its lease is renewed while it lasts."""
        if self.openrouter_tasks:
            (ImageTask.update(lease_until=lease_end(now()))
             .where(ImageTask.id.in_(list(self.openrouter_tasks)) & (ImageTask.lease_owner == self.owner))
             .execute())


def lease_end(start):
    return start + datetime.timedelta(seconds=current_app.config["IMAGE_LEASE"])


def claim(task, owner):
    """Take the lease of `task` for the process `owner` unless another process holds a live
    one; True if taken. Only the lease holder submits, polls or paints the task."""
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


def follow(task):
    """Poll a Wan task once and, unless it has ended, schedule the next poll."""
    problem = None
    try:
        if wan.follow(task):
            return
    except errors.ProviderError as exc:
        log.warning("polling image task %s: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
        problem = exc
    except Exception:  # one task's trouble must not stall the others
        log.exception("following image task %s failed", task.id)
    postpone(task, problem)


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
    schedule_poll(task)


def schedule_poll(task):
    """The next poll, after a delay growing with the polls so far; the lease is kept until
    then, and a margin."""
    task.next_poll_at = now() + poll_delay(task.polls)
    task.lease_until = lease_end(task.next_poll_at)
    task.save()


def poll_delay(polls):
    base = current_app.config["IMAGE_POLL_INTERVAL"]
    return datetime.timedelta(seconds=min(base * 1.25 ** polls, 15))


def is_too_old(task):
    started = task.submitted_at or task.created_at
    return (now() - started).total_seconds() > current_app.config["IMAGE_TASK_TIMEOUT"]
