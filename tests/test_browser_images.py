"""Painting and the gallery, as a person uses them in chromium."""
import pytest
from playwright.sync_api import expect

from browser_helpers import live_db
from models import Image, ImageTask

pytestmark = pytest.mark.browser


def paint(page, live_server, prompt, **choices):
    page.goto(live_server.url + "/images")
    page.get_by_label("提示词", exact=True).fill(prompt)
    for label, value in choices.items():
        page.get_by_label(label).select_option(value)
    page.get_by_role("button", name="开始画").click()


def test_painting_shows_a_card_at_once_that_turns_into_the_picture(page, live_server):
    paint(page, live_server, "一间有着精致窗户的花店 [slow]", 张数="2")
    card = page.locator(".image-task").first
    expect(card).to_contain_text("一间有着精致窗户的花店")
    expect(card).to_contain_text("已等待")
    expect(card.locator("img")).to_have_count(2, timeout=20_000)
    expect(card).not_to_have_attribute("hx-trigger", "load delay:2s")
    expect(card).to_contain_text("用时")


def test_the_empty_state_goes_when_the_first_task_appears(page, live_server):
    page.goto(live_server.url + "/images")
    empty = page.get_by_text("还没有作品")
    expect(empty).to_be_visible()
    page.get_by_label("提示词", exact=True).fill("一间花店 [slow]")
    page.get_by_role("button", name="开始画").click()
    expect(page.locator(".image-task")).to_have_count(1)
    expect(empty).to_be_hidden()


# A select box is wide enough for its chosen option's text (and its arrow).
FITS_ITS_CHOICE = """(select) => {
  const text = document.createElement("span");
  text.style.font = getComputedStyle(select).font;
  text.textContent = select.options[select.selectedIndex].text;
  document.body.append(text);
  const needed = text.getBoundingClientRect().width + 32;
  text.remove();
  return select.clientWidth >= needed;
}"""


@pytest.mark.parametrize("width, columns", [(1440, 2), (375, 1)])
def test_the_painting_form_gives_each_field_the_room_its_value_needs(browser, live_server, width, columns):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(live_server.url + "/images")
    page.get_by_label("模型").fill("google/gemini-2.5-flash-image")
    assert page.get_by_label("模型").evaluate("el => el.scrollWidth <= el.clientWidth")  # not cut
    for field in (page.get_by_label("服务"), page.get_by_label("尺寸")):
        assert field.evaluate(FITS_ITS_CHOICE), field
    service, size = page.get_by_label("服务").bounding_box(), page.get_by_label("尺寸").bounding_box()
    assert (service["y"] == size["y"]) == (columns == 2)
    page.close()


def test_a_bad_value_is_explained_next_to_its_field_and_nothing_is_painted(page, live_server):
    page.goto(live_server.url + "/images")
    page.get_by_label("提示词", exact=True).fill("一只猫")
    page.get_by_label("尺寸").select_option("custom")
    page.get_by_label("宽（像素）").fill("100")
    page.get_by_label("宽（像素）").evaluate("el => el.removeAttribute('min')")
    page.get_by_role("button", name="开始画").click()
    expect(page.get_by_role("alert")).to_contain_text("512–1440")
    expect(page.locator(".image-task")).to_have_count(0)


def test_a_refused_prompt_is_explained_in_chinese(page, live_server):
    paint(page, live_server, "画 [moderation]")
    expect(page.locator(".task-error")).to_contain_text("安全审核")


def test_the_gallery_detail_paint_again_and_delete(page, live_server):
    paint(page, live_server, "湖边的小屋")
    expect(page.locator(".image-task img")).to_have_count(1, timeout=20_000)
    page.get_by_role("link", name="图库").click()
    expect(page.locator(".gallery-item")).to_have_count(1)
    page.get_by_label("搜索提示词").fill("没有这个")
    expect(page.get_by_text("没有找到匹配的图片")).to_be_visible()
    page.get_by_label("搜索提示词").fill("小屋")
    expect(page.locator(".gallery-item")).to_have_count(1)
    page.locator(".gallery-item").first.click()
    expect(page.get_by_text("改写后的提示词")).to_be_visible()
    page.wait_for_function("() => document.querySelector('main img').naturalWidth > 0")  # it decoded
    page.get_by_role("link", name="再画一次").click()
    expect(page.get_by_label("提示词", exact=True)).to_have_value("湖边的小屋")
    page.go_back()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="删除").click()
    expect(page).to_have_url(live_server.url + "/gallery")
    expect(page.get_by_text("图库还是空的")).to_be_visible()


def test_the_gallery_shows_more_pictures_as_you_scroll_down(page, live_server):
    with live_db(page, live_server):
        task = ImageTask.create(model="wan2.2-t2i-flash", prompt="花店", status=ImageTask.SUCCEEDED)
        for i in range(45):
            Image.create(task=task, index=i, file=f"x/{i}.png", thumbnail=f"thumbs/x/{i}.webp",
                         width=64, height=64, prompt=f"花店 {i}", model=task.model, provider="dashscope")
    page.goto(live_server.url + "/gallery")
    expect(page.locator(".gallery-item")).to_have_count(40)
    page.locator(".gallery-item").nth(39).hover()
    page.mouse.wheel(0, 20_000)  # the grid scrolls inside <main>, not the window
    expect(page.locator(".gallery-item")).to_have_count(45)


def test_painting_from_the_chat_shows_the_card_in_the_conversation(page, live_server):
    page.goto(live_server.url + "/")
    page.get_by_label("画图").check()
    box = page.get_by_label("消息")
    box.fill("湖边的小屋")
    box.press("Enter")
    card = page.locator("article.painting .image-task")
    expect(card).to_contain_text("湖边的小屋")
    expect(card.locator("img")).to_have_count(1, timeout=20_000)
    page.get_by_role("link", name="图库").click()
    expect(page.locator(".gallery-item")).to_have_count(1)
