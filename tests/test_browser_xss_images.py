"""Painting prompts never run as script on cards, in the gallery or on a picture's page."""
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from browser_helpers import live_db
from models import Image, ImageTask
from xss import BREAKOUTS, PAYLOADS, assert_nothing_ran, joined, watch

pytestmark = pytest.mark.browser


def add_image(payload):
    task = ImageTask.create(model="wan2.2-t2i-flash", prompt=payload, negative_prompt=payload,
                            status=ImageTask.PARTIAL, error=payload)
    return Image.create(task=task, file="none.png", thumbnail="thumbs/none.webp", width=64,
                        height=64, prompt=payload, negative_prompt=payload, rewritten_prompt=payload,
                        model=task.model, provider="dashscope").id


def test_saved_prompts_never_run_on_the_painting_cards(page, live_server):
    watch(page)
    for start in range(0, len(PAYLOADS), 20):  # the page shows the newest 20
        batch = PAYLOADS[start:start + 20]
        with live_db(page, live_server):
            for payload in batch:
                add_image(payload)
        page.goto(live_server.url + "/images")
        captions = page.locator(".image-task figcaption > span:first-child").all_text_contents()
        assert captions[:len(batch)] == batch[::-1]
        assert_nothing_ran(page, f"cards from {start}")


def test_saved_prompts_never_run_in_the_gallery_or_on_a_pictures_page(page, live_server):
    watch(page)
    with live_db(page, live_server):
        ids = [add_image(payload) for payload in PAYLOADS]
    page.goto(live_server.url + "/gallery")
    page.locator(".gallery-item").nth(39).hover()
    page.mouse.wheel(0, 20_000)  # loads the rest
    expect(page.locator(".gallery-item")).to_have_count(len(PAYLOADS))
    assert_nothing_ran(page, "gallery")
    for image_id, payload in zip(ids, PAYLOADS):
        if payload not in BREAKOUTS:
            continue
        page.goto(f"{live_server.url}/gallery/{image_id}", wait_until="domcontentloaded")
        expect(page.locator("#image-prompt")).to_have_text(payload, use_inner_text=False)
        assert_nothing_ran(page, f"picture page: {payload!r}")
        page.goto(f"{live_server.url}/images?from={image_id}", wait_until="domcontentloaded")
        expect(page.get_by_label("提示词", exact=True)).to_have_value(payload)
        assert_nothing_ran(page, f"paint again: {payload!r}")
        page.goto(f"{live_server.url}/gallery?q={quote(payload)}", wait_until="domcontentloaded")
        expect(page.get_by_label("搜索提示词")).to_have_value(payload.replace("\n", ""))
        assert_nothing_ran(page, f"gallery search: {payload!r}")


def test_a_painting_prompt_never_runs_on_its_card(page, live_server):
    watch(page)
    page.goto(live_server.url + "/images")
    page.get_by_label("提示词", exact=True).fill(joined(limit=800))
    page.get_by_role("button", name="开始画").click()
    card = page.locator(".image-task").first
    expect(card.locator("figcaption")).to_contain_text("<script>alert(1)</script>")
    assert_nothing_ran(page, "running card")
    expect(card.locator("img")).to_have_count(1, timeout=20_000)
    assert_nothing_ran(page, "finished card")
