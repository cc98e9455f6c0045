"""The models: settings, conversations and messages, paintings and pictures, usage, imports
and logins, with the small queries the views and services ask them for. The database they
live on, its connections and its schema upgrades are in db.py."""
import datetime
import uuid

from peewee import (SQL, AutoField, BooleanField, CharField, DateTimeField, FloatField, ForeignKeyField,
                    IntegerField, Model, NodeList, TextField, fn)

from db import database, is_sqlite


def now():
    return datetime.datetime.now()


class IdField(AutoField):
    """An id that is never reused, so a browser still holding an old id cannot reach a new
    row: SQLite needs AUTOINCREMENT for that; a PostgreSQL sequence never goes back."""

    def ddl(self, ctx):
        ddl = super().ddl(ctx)
        return NodeList((ddl, SQL("AUTOINCREMENT"))) if is_sqlite() else ddl


def day_of(field):
    """The day of a datetime column as 'YYYY-MM-DD' text, on every engine."""
    return fn.date(field).cast("text")


class BaseModel(Model):
    class Meta:
        database = database


class Setting(BaseModel):
    key = CharField(primary_key=True)
    value = TextField()

    changes = 0  # set_value() calls in this process, so that a copy read before can tell it is old

    @classmethod
    def get_value(cls, key, default=None):
        row = cls.get_or_none(cls.key == key)
        return row.value if row else default

    @classmethod
    def set_value(cls, key, value):
        Setting.changes += 1
        if value is None:
            cls.delete().where(cls.key == key).execute()
        else:
            cls.insert(key=key, value=value).on_conflict(conflict_target=[cls.key],
                                                         preserve=[cls.value]).execute()

    @classmethod
    def get_or_set(cls, key, value):
        """The value of `key`, set to `value` first unless some process already set it."""
        cls.insert(key=key, value=value).on_conflict_ignore().execute()
        return cls.get_value(key)

    @classmethod
    def all_values(cls):
        return {row.key: row.value for row in cls.select()}


class Conversation(BaseModel):
    MAX_TITLE = 100  # characters, wherever a title comes from

    id = IdField()
    title = CharField(default="新对话")
    provider = CharField(default="dashscope")
    model = CharField(default="")
    system_prompt = TextField(default="")
    thinking = BooleanField(default=False)
    is_pinned = BooleanField(default=False)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now, index=True)
    # Stays with the conversation through export and import: importing it again finds it.
    export_id = CharField(default=lambda: uuid.uuid4().hex, unique=True)

    class Meta:
        # The sidebar's order: pinned first, then newest (walked backwards, no sort).
        indexes = ((("is_pinned", "updated_at", "id"), False),)

    @classmethod
    def in_sidebar_order(cls):
        return cls.select().order_by(cls.is_pinned.desc(), cls.updated_at.desc(), cls.id.desc())

    @classmethod
    def latest(cls, query="", offset=0, limit=50):
        """Pinned, then newest first, `limit` at a time from `offset`, matching `query` if given:
        (id, title, is_pinned), all the sidebar shows."""
        conversations = cls.in_sidebar_order().select(cls.id, cls.title, cls.is_pinned).namedtuples()
        if query:
            matching = Message.select(Message.conversation).where(Message.matching(query))
            conversations = conversations.where(
                cls.title.contains(query) | cls.id.in_(matching))
        return list(conversations.offset(offset).limit(limit))

    def messages(self):
        """The visible path: the chosen version of every turn, oldest first."""
        return self.message_set.where(Message.is_current).order_by(Message.id)

    def recent_messages(self, before_id=None, limit=40):
        """The last `limit` messages of the visible path (before `before_id`), oldest first,
        each knowing its versions, and whether there are older ones."""
        query = self.message_set.where(Message.is_current).order_by(Message.id.desc())
        if before_id:
            query = query.where(Message.id < before_id)
        newest_first = list(query.limit(limit + 1))
        messages = newest_first[:limit][::-1]
        Message.attach_versions(self.id, messages)
        return messages, len(newest_first) > limit

    def touch(self, **changes):
        """Move the conversation up the sidebar, with `changes` to its fields saved too."""
        for name, value in changes.items():
            setattr(self, name, value)
        self.updated_at = now()
        self.save(only=[Conversation.updated_at, *(getattr(Conversation, name) for name in changes)])


class ImageTask(BaseModel):
    """One painting request: a Wan async task, or one OpenRouter image call.

    `prompt` is what the person wrote (for an edit, the instruction); `id` is Moyan's own
    id of the task (`image_task_id` elsewhere), `provider_task_id` Wan's."""
    WAITING, PENDING, RUNNING = "waiting", "pending", "running"
    SUCCEEDED, PARTIAL, FAILED, CANCELED, EXPIRED = "succeeded", "partial", "failed", "canceled", "expired"
    ACTIVE = (WAITING, PENDING, RUNNING)
    MAX_PROMPT = 800  # characters; a few models take more (services/painting/form.py)
    MAX_SEED = 2_147_483_647  # Wan's largest seed

    id = IdField()
    provider = CharField(default="dashscope")
    model = CharField()
    prompt = TextField()
    negative_prompt = TextField(default="")
    width = IntegerField(default=1024)
    height = IntegerField(default=1024)
    n = IntegerField(default=1)
    seed = IntegerField(null=True)
    prompt_extend = BooleanField(default=True)
    watermark = BooleanField(default=False)
    status = CharField(default=WAITING, index=True)
    provider_task_id = CharField(default="", index=True)
    request_id = CharField(default="")
    error = TextField(default="")
    polls = IntegerField(default=0)
    next_poll_at = DateTimeField(default=now)
    created_at = DateTimeField(default=now)
    submitted_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    # The lease: the painter (one per server process) following the task, and until when;
    # another process may take the task over once it has run out (services/painting/scheduler.py).
    lease_owner = CharField(default="")
    lease_until = DateTimeField(null=True)
    # An edit ("改这张图"): the picture changed (relative to the images folder) and, when it came
    # from the gallery, that Image's id; `prompt` holds the instruction.
    source_file = CharField(default="")
    source_image_id = IntegerField(null=True, index=True)

    @property
    def is_edit(self):
        return bool(self.source_file)

    @property
    def source_image(self):
        return Image.get_or_none(Image.id == self.source_image_id) if self.source_image_id else None

    @property
    def is_running(self):
        return self.status in self.ACTIVE

    @classmethod
    def lease_has_run_out(cls):
        """A condition: no process holds the task now."""
        return cls.lease_until.is_null() | (cls.lease_until < now())

    @property
    def size(self):
        return f"{self.width}*{self.height}"

    def seconds_elapsed(self):
        """Since the request, the wait in the queues included: it never jumps back."""
        end = self.finished_at or now()
        return max(0, int((end - self.created_at).total_seconds()))

    def images(self):
        return self.image_set.order_by(Image.index)

    @classmethod
    def edits_of(cls, source_file, limit=20):
        """The latest edits of the picture `source_file`, newest first."""
        return list(cls.select().where(cls.source_file == source_file).order_by(cls.id.desc()).limit(limit))

    @classmethod
    def recent(cls, limit=20):
        return cls.select().order_by(cls.id.desc()).limit(limit)

    # Lists, not cursors: an open cursor pins an old snapshot while the loop writes.
    @classmethod
    def waiting(cls):
        return list(cls.select().where(cls.status == cls.WAITING).order_by(cls.id))

    @classmethod
    def due(cls):
        """Wan tasks at the provider whose next poll is due."""
        return list(cls.select().where(cls.status.in_((cls.PENDING, cls.RUNNING))
                                       & (cls.provider == "dashscope") & (cls.next_poll_at <= now())))

    @classmethod
    def busy_count(cls):
        return cls.select().where(cls.status.in_((cls.PENDING, cls.RUNNING))
                                  & (cls.provider == "dashscope")).count()


class Message(BaseModel):
    STREAMING, DONE, STOPPED, ERROR, INTERRUPTED = "streaming", "done", "stopped", "error", "interrupted"
    INTERRUPTED_ERROR = "answer_interrupted"  # a failure code: services/failures.py has its sentence

    id = IdField()
    conversation = ForeignKeyField(Conversation, on_delete="CASCADE")
    role = CharField()  # user | assistant
    content = TextField(default="")
    content_html = TextField(null=True)  # an answer's Markdown, rendered once when it is saved
    reasoning = TextField(default="")
    status = CharField(default=DONE)
    error = TextField(default="")
    provider = CharField(default="")
    model = CharField(default="")
    prompt_tokens = IntegerField(null=True)
    completion_tokens = IntegerField(null=True)
    total_tokens = IntegerField(null=True)
    # Set when the "answer" is a painting (画图 in chat). Moyan never deletes an image task
    # (deleting a picture keeps its task), so a painting answer always finds its card.
    image_task = ForeignKeyField(ImageTask, null=True, on_delete="SET NULL", column_name="image_task_id")
    is_vision_fallback = BooleanField(default=False)  # the default vision model answered: the chosen one cannot see
    created_at = DateTimeField(default=now)
    # Left out of every later request: by hand, or because moderation refused it (a flagged
    # message kept in the history makes every later request fail again).
    is_excluded = BooleanField(default=False)
    moderated = CharField(default="")  # "input": refused on the way in; "output": cut on the way out
    # Versions and branches: a message follows its parent; siblings (same parent) are the
    # versions of a turn, one of them chosen. The visible path (is_current) follows the
    # chosen child from the chosen root; it is what the page shows and the model is sent.
    parent_id = IntegerField(null=True)
    is_chosen = BooleanField(default=True)
    is_current = BooleanField(default=True)
    cost = FloatField(null=True)  # of this answer, in `currency`; None: no price known
    currency = CharField(default="")  # USD (OpenRouter) | CNY (DashScope's price table)
    is_usage_estimate = BooleanField(default=False)  # no usage came (stopped, cut): counted here

    @property
    def is_streaming(self):
        return self.status == self.STREAMING

    def pictures(self):
        return list(self.attachments.order_by(Attachment.id)) if self.role == "user" else []

    @classmethod
    def matching(cls, query):
        """A condition for messages containing `query`: through the trigram index when the
        query is long enough for it (3 characters), else by scanning. On PostgreSQL the
        trigram index (pg_trgm) serves this ILIKE itself."""
        if len(query) < 3 or not is_sqlite():
            return cls.content.contains(query)
        phrase = '"' + query.replace('"', '""') + '"'
        return cls.id.in_(SQL("(SELECT rowid FROM message_fts WHERE message_fts MATCH ?)", [phrase]))

    @classmethod
    def history_before(cls, message):
        """The visible turns that lead up to `message`, for the upstream prompt: on one path
        every message is newer than its parent, so these are exactly its ancestors."""
        return (cls.select()
                .where((cls.conversation == message.conversation_id) & cls.is_current & (cls.id < message.id))
                .order_by(cls.id))

    @classmethod
    def question_of(cls, answer_id):
        """The user message that `answer_id` answers: its parent."""
        answer = cls.get_by_id(answer_id)
        return cls.get_or_none(cls.id == answer.parent_id) if answer.parent_id else None

    @classmethod
    def append(cls, conversation, **fields):
        """A new message at the end of the visible path."""
        leaf = (cls.select(cls.id).where((cls.conversation == conversation) & cls.is_current)
                .order_by(cls.id.desc()).first())
        return cls.create(conversation=conversation, parent_id=leaf.id if leaf else None, **fields)

    @classmethod
    def add_version(cls, of, **fields):
        """A new version of the turn `of` (same parent), chosen: the visible path now runs
        through it, and `of` with what followed it stays reachable."""
        version = cls.create(conversation=of.conversation_id, parent_id=of.parent_id, **fields)
        version.choose()
        return version

    def siblings(self):
        return (Message.select(Message.id)
                .where((Message.conversation == self.conversation_id) & (Message.role == self.role)
                       & ((Message.parent_id == self.parent_id) if self.parent_id else Message.parent_id.is_null()))
                .order_by(Message.id))

    def choose(self):
        """Make this the chosen version of its turn and walk the visible path again."""
        (Message.update(is_chosen=(Message.id == self.id))
         .where(Message.id.in_([m.id for m in self.siblings()])).execute())
        Message.update_path(self.conversation_id)

    @classmethod
    def update_path(cls, conversation_id):
        """Mark the visible path: from the chosen root, the chosen child, and so on."""
        rows = list(cls.select(cls.id, cls.parent_id, cls.is_chosen)
                    .where(cls.conversation == conversation_id).order_by(cls.id).tuples())
        children = {}
        for message_id, parent_id, is_chosen in rows:
            children.setdefault(parent_id, []).append((message_id, is_chosen))
        path, parent = [], None
        while children.get(parent):
            options = children[parent]
            parent = next((m for m, is_chosen in reversed(options) if is_chosen), options[-1][0])
            path.append(parent)
        in_conversation = cls.conversation == conversation_id
        cls.update(is_current=False).where(in_conversation & cls.id.not_in(path or [0])).execute()
        cls.update(is_current=True).where(in_conversation & cls.id.in_(path or [0])).execute()

    @classmethod
    def attach_versions(cls, conversation_id, messages):
        """Give each of `messages` its versions (sibling ids, oldest first), in one query."""
        parents = {m.parent_id for m in messages}
        query = cls.select(cls.id, cls.parent_id, cls.role).where(cls.conversation == conversation_id)
        condition = cls.parent_id.in_([p for p in parents if p] or [0])
        if None in parents:
            condition |= cls.parent_id.is_null()
        groups = {}
        for row in query.where(condition).order_by(cls.id):
            groups.setdefault((row.parent_id, row.role), []).append(row.id)
        for m in messages:
            m.version_ids = groups.get((m.parent_id, m.role), [m.id])

    @property
    def versions(self):
        """(number of this version, how many, previous id, next id)."""
        ids = getattr(self, "version_ids", None) or [m.id for m in self.siblings()] or [self.id]
        index = ids.index(self.id) if self.id in ids else 0
        return (index + 1, len(ids), ids[index - 1] if index else None,
                ids[index + 1] if index + 1 < len(ids) else None)

    @classmethod
    def mark_refused_question(cls, answer_id):
        """Input moderation refused the request for `answer_id`: everything else in it went
        through before, so its question is what was flagged. It stays out of later requests."""
        question = cls.question_of(answer_id)
        if question is not None:
            (cls.update(is_excluded=True, moderated="input")
             .where(cls.id == question.id).execute())
        return question

    @classmethod
    def mark_interrupted(cls, *ids):
        """Answers (all, or those with `ids`) left streaming with nothing generating them:
        the server stopped in the middle. What was saved is kept."""
        query = cls.update(status=cls.INTERRUPTED, error=cls.INTERRUPTED_ERROR)
        query = query.where(cls.status == cls.STREAMING)
        return query.where(cls.id.in_(ids)).execute() if ids else query.execute()

    @classmethod
    def tokens_per_day(cls, since):
        """Token sums and answer counts per day ('YYYY-MM-DD') and model, for answers since
        `since` that reported usage; answers without usage (stopped, failed) are left out."""
        day = day_of(cls.created_at)
        return list(cls.select(day.alias("day"), cls.model,
                               fn.COALESCE(fn.SUM(cls.prompt_tokens), 0).alias("prompt_tokens"),
                               fn.COALESCE(fn.SUM(cls.completion_tokens), 0).alias("completion_tokens"),
                               fn.SUM(cls.total_tokens).alias("total_tokens"),
                               fn.COUNT(cls.id).alias("answers"))
                    .where((cls.role == "assistant") & (cls.total_tokens > 0) & (cls.created_at >= since))
                    .group_by(day, cls.model).order_by(day, cls.model).dicts())


class Image(BaseModel):
    id = IdField()
    task = ForeignKeyField(ImageTask, null=True, on_delete="SET NULL", column_name="image_task_id")
    index = IntegerField(default=0)
    file = CharField()  # relative to the images folder
    thumbnail = CharField()
    content_type = CharField(default="image/png")
    width = IntegerField()
    height = IntegerField()
    prompt = TextField()
    negative_prompt = TextField(default="")
    rewritten_prompt = TextField(default="")  # the prompt as the provider rewrote it (prompt_extend)
    seed = IntegerField(null=True)
    model = CharField(index=True)
    provider = CharField()
    provider_task_id = CharField(default="")
    request_id = CharField(default="")
    created_at = DateTimeField(default=now)

    @classmethod
    def page(cls, query="", model="", before_id=None, limit=40):
        """Newest first, `limit` at a time, continuing below `before_id`."""
        images = cls.select().order_by(cls.id.desc())
        if query:
            images = images.where(cls.prompt.contains(query) | cls.rewritten_prompt.contains(query))
        if model:
            images = images.where(cls.model == model)
        if before_id:
            images = images.where(cls.id < before_id)
        return list(images.limit(limit))

    def edits(self):
        """The pictures made by editing this one ("由此改出")."""
        made = ImageTask.select(ImageTask.id).where(ImageTask.source_image_id == self.id)
        return list(Image.select().where(Image.task.in_(made)).order_by(Image.id))

    @classmethod
    def model_names(cls):
        return [row.model for row in cls.select(cls.model).distinct().order_by(cls.model)]

    @classmethod
    def count_per_day(cls, since):
        """Pictures kept per day ('YYYY-MM-DD') and model since `since`."""
        day = day_of(cls.created_at)
        return list(cls.select(day.alias("day"), cls.model, fn.COUNT(cls.id).alias("images"))
                    .where(cls.created_at >= since)
                    .group_by(day, cls.model).order_by(day, cls.model).dicts())


class ImportJob(BaseModel):
    """A JSON import, read and written in the background; the page polls this row. A job not
    heard from for a minute lost its process (a restart) and is shown as interrupted."""
    READING, WRITING, DONE, FAILED = "reading", "writing", "done", "failed"
    ABANDONED_AFTER = datetime.timedelta(minutes=1)

    id = IdField()
    status = CharField(default=READING)
    messages_total = IntegerField(default=0)
    messages_done = IntegerField(default=0)
    conversations = IntegerField(default=0)  # added
    updated = IntegerField(default=0)  # already here, replaced by the file's newer copy
    skipped = IntegerField(default=0)  # already here, as new as the file's copy
    error = TextField(default="")
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    @property
    def is_unfinished(self):
        return self.status in (self.READING, self.WRITING)

    @property
    def is_running(self):
        return self.is_unfinished and now() - self.updated_at < self.ABANDONED_AFTER

    @property
    def is_interrupted(self):
        return self.is_unfinished and not self.is_running


class UsageRecord(BaseModel):
    """One upstream call and what it used: appended, never changed. Plain ids, no foreign
    keys: deleting, regenerating or editing what it served leaves past usage as it was."""
    ANSWER, TITLE, PAINTING = "answer", "title", "painting"

    id = IdField()
    at = DateTimeField(default=now, index=True)
    kind = CharField()
    provider = CharField()
    model = CharField(default="")
    prompt_tokens = IntegerField(default=0)
    completion_tokens = IntegerField(default=0)
    reasoning_tokens = IntegerField(default=0)
    images = IntegerField(default=0)
    cost = FloatField(null=True)  # None: no price known for the model
    currency = CharField(default="")
    is_estimate = BooleanField(default=False)
    conversation_id = IntegerField(null=True)
    message_id = IntegerField(null=True)
    image_task_id = IntegerField(null=True)
    is_imported = BooleanField(default=False)  # came with an imported conversation

    @classmethod
    def since(cls, moment, is_imported=False):
        return cls.select().where((cls.at >= moment) & (cls.is_imported == is_imported))

    @classmethod
    def per_day(cls, since):
        """Sums per day ('YYYY-MM-DD'), model and currency of the records since `since`."""
        day = day_of(cls.at)
        return list(cls.select(day.alias("day"), cls.model, cls.currency,
                               fn.SUM(cls.prompt_tokens).alias("prompt_tokens"),
                               fn.SUM(cls.completion_tokens).alias("completion_tokens"),
                               fn.SUM(cls.prompt_tokens + cls.completion_tokens).alias("total_tokens"),
                               fn.SUM(cls.images).alias("images"),
                               fn.SUM(cls.cost).alias("cost"),
                               fn.COUNT(cls.id).alias("calls"))
                    .where((cls.at >= since) & (cls.is_imported == False))  # noqa: E712
                    .group_by(day, cls.model, cls.currency).order_by(day, cls.model).dicts())

    @classmethod
    def per_conversation(cls, since, limit=20):
        """Sums per conversation (the costliest first, then the most tokens)."""
        tokens = fn.SUM(cls.prompt_tokens + cls.completion_tokens)
        return list(cls.select(cls.conversation_id, cls.currency, tokens.alias("total_tokens"),
                               fn.SUM(cls.cost).alias("cost"), fn.COUNT(cls.id).alias("calls"))
                    .where((cls.at >= since) & (cls.is_imported == False)  # noqa: E712
                           & cls.conversation_id.is_null(False))
                    .group_by(cls.conversation_id, cls.currency)
                    .order_by(fn.COALESCE(fn.SUM(cls.cost), 0).desc(), tokens.desc()).limit(limit).dicts())

    @classmethod
    def spent(cls, provider, since):
        """What `provider` cost since `since` (imports left out)."""
        return (cls.select(fn.COALESCE(fn.SUM(cls.cost), 0))
                .where((cls.provider == provider) & (cls.at >= since) & (cls.is_imported == False))  # noqa: E712
                .scalar())


class Attachment(BaseModel):
    """A picture sent with a chat message: uploaded, pasted, dropped or taken from the gallery.
    It exists from the upload on; sending the message attaches it."""
    id = IdField()
    message = ForeignKeyField(Message, null=True, on_delete="CASCADE", backref="attachments")
    file = CharField()  # relative to the images folder
    thumbnail = CharField()
    content_type = CharField()
    width = IntegerField()
    height = IntegerField()
    size = IntegerField()  # bytes
    created_at = DateTimeField(default=now)

    @classmethod
    def unsent(cls, ids):
        """The pictures with these ids that no message has yet, in the order given."""
        found = {a.id: a for a in cls.select().where(cls.id.in_(ids) & cls.message.is_null())}
        return [found[i] for i in ids if i in found]

    @classmethod
    def of_messages(cls, message_ids):
        """message id -> its pictures, for these messages."""
        pictures = {}
        for picture in cls.select().where(cls.message.in_(message_ids)).order_by(cls.id):
            pictures.setdefault(picture.message_id, []).append(picture)
        return pictures


class LoginFailure(BaseModel):
    address = CharField(index=True)
    at = DateTimeField(default=now, index=True)


class LoginSession(BaseModel):
    """A browser logged in with the access password. Its id lives in the signed session
    cookie; logging out deletes the row, so a copied cookie stops working too."""
    id = CharField(primary_key=True)
    password_mark = CharField()  # of the password it logged in with: a new password ends it
    created_at = DateTimeField(default=now, index=True)


MODELS = [Setting, Conversation, Message, ImageTask, Image, Attachment, UsageRecord, LoginFailure,
          LoginSession, ImportJob]
