"""Conversations, messages and pictures written straight into a fresh database with
Peewee bulk inserts, and server times read from real HTTP requests."""
import datetime
import io
import os
import random
import re
import statistics
import time

import requests

import db
from models import Conversation, Image, ImageTask, Message

LONG_CONVERSATION = 500  # messages in the conversation that is opened
SEARCH_TERM = "墨水屏"  # in about one message in 200
WORDS = ("今天 我们 讨论 一下 如何 使用 通义千问 写 一段 代码 并且 解释 它的 原理 数据库 索引 查询 "
         "性能 缓存 网络 请求 图片 生成 模型 回答 问题 例如 因为 所以 但是 如果 the quick brown "
         "fox jumps over lazy dog Python SQLite Flask htmx stream token").split()
CODE = "\n\n```python\ndef greet(name):\n    return f\"你好，{name}\"\n```\n\n"


def sentence(rng, length):
    text = " ".join(rng.choice(WORDS) for _ in range(length // 3))
    if rng.random() < 0.005:
        text += f" {SEARCH_TERM} "
    return text


def seed_history(data_dir, message_count, seed=1):
    """`message_count` messages in message_count/10 conversations, one of them
    LONG_CONVERSATION long; returns that conversation's id."""
    rng = random.Random(seed)
    db.init_db(f"sqlite:///{os.path.join(data_dir, 'moyan.db')}")
    start = datetime.datetime(2025, 1, 1)
    conversation_count = max(1, message_count // 10)
    with db.database.connection_context(), db.database.atomic():
        Conversation.insert_many(
            {"title": sentence(rng, 20)[:30], "model": "qwen-plus",
             "created_at": start + datetime.timedelta(minutes=i),
             "updated_at": start + datetime.timedelta(minutes=i)}
            for i in range(conversation_count)).execute()
        ids = [c.id for c in Conversation.select(Conversation.id).order_by(Conversation.id)]
        long_id = ids[len(ids) // 2]
        owners = [long_id] * LONG_CONVERSATION
        others = [i for i in ids if i != long_id] or [long_id]
        owners += [others[n % len(others)] for n in range(message_count - len(owners))]
        owners.sort()
        rows = []
        for n, owner in enumerate(owners):
            is_user = n % 2 == 0
            content = sentence(rng, 40 if is_user else 300)
            if not is_user and n % 5 == 1:
                content += CODE
            rows.append({"conversation": owner, "role": "user" if is_user else "assistant",
                         "content": content, "model": "qwen-plus", "status": "done",
                         "total_tokens": None if is_user else 420,
                         "created_at": start + datetime.timedelta(seconds=n)})
        for batch in range(0, len(rows), 2000):
            Message.insert_many(rows[batch:batch + 2000]).execute()
    return long_id


def seed_gallery(app, image_count, originals=6):
    """`originals` pictures saved by the app's own code (file + WebP thumbnail), then
    image_count rows pointing at them; returns the thumbnail sizes in bytes."""
    from services.painting.files import images_dir, save_image
    with app.app_context(), db.database.connection_context():
        task = ImageTask.create(model="wan2.2-t2i-flash", prompt="一只猫", status="succeeded")
        saved = [save_image(task, i, picture_png(i), "image/png", "", "") for i in range(originals)]
        sizes = [os.path.getsize(os.path.join(images_dir(), s.thumbnail)) for s in saved]
        template = saved[0].__data__.copy()
        template.pop("id")
        rows = [{**template, "file": saved[n % originals].file,
                 "thumbnail": saved[n % originals].thumbnail,
                 "prompt": f"第 {n} 张：花店门口的猫，水彩",
                 "model": ("wan2.2-t2i-flash", "wan2.2-t2i-plus")[n % 2]} for n in range(image_count)]
        with db.database.atomic():
            for batch in range(0, len(rows), 1000):
                Image.insert_many(rows[batch:batch + 1000]).execute()
    return sizes


def picture_png(seed, size=1024):
    """A picture with what a generated one has: gradients, shapes, fine texture."""
    from PIL import Image as PILImage, ImageDraw, ImageFilter
    rng = random.Random(seed)
    picture = PILImage.linear_gradient("L").resize((size, size)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    for _ in range(40):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randrange(20, 200)
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    noise = PILImage.effect_noise((size, size), 24).convert("RGB")
    picture = PILImage.blend(picture.filter(ImageFilter.GaussianBlur(3)), noise, 0.15)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def time_requests(url, headers=None, repeat=20, warmup=3):
    """Median and p95 response time (ms) of GET `url` over a kept-alive connection."""
    session = requests.Session()
    times = []
    for n in range(warmup + repeat):
        started = time.perf_counter()
        response = session.get(url, headers=headers or {})
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        if n >= warmup:
            times.append(elapsed * 1000)
    times.sort()
    return {"median": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))],
            "bytes": len(response.content)}


def first_page_last_id(base):
    """The id the gallery's first page continues below."""
    html = requests.get(base + "/gallery", timeout=10).text
    return int(re.findall(r"before=(\d+)", html)[-1])
