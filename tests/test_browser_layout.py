"""Every page at phone, tablet and desktop width, in the light and the dark theme: nothing
overflows sideways and every control is on screen (or in a drawer or a row that scrolls).
Shots go to a temporary folder; `make screenshots` (MOYAN_SCREENSHOTS=1) writes the desktop
and phone shots of the chat, painting and gallery pages to docs/screenshots for the README."""
import re

import pytest
from playwright.sync_api import expect

from browser_helpers import shoot

pytestmark = pytest.mark.browser

WIDTHS = {"phone": (375, 812), "tablet": (768, 1024), "desktop": (1440, 900)}

OFF_SCREEN_CONTROLS = """() => {
  const width = window.innerWidth;
  const scrollsSideways = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (/(auto|scroll)/.test(style.overflowX) && p.scrollWidth > p.clientWidth) return true;
    }
    return false;
  };
  return [...document.querySelectorAll("a, button, input, select, textarea, summary")]
    .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden")
    .filter((el) => { const r = el.getBoundingClientRect(); return r.left < -1 || r.right > width + 1; })
    .filter((el) => !scrollsSideways(el))
    .map((el) => el.outerHTML.slice(0, 120));
}"""


@pytest.fixture
def filled(live_server):
    """A conversation with a finished answer, and a painted picture."""
    session = live_server.session()
    sent = session.post(live_server.url + "/send", data={"text": "用 Python 打个招呼", "provider": "dashscope"})
    message_id = re.findall(r'id="msg-(\d+)"', sent.text)[-1]
    session.get(f"{live_server.url}/m/{message_id}/stream", timeout=30).close()
    session.post(live_server.url + "/images", data={"prompt": "一间有着精致窗户的花店", "size": "1024*1024", "n": "2",
                                                    "provider": "dashscope", "model": "wan2.2-t2i-flash"})
    return {"conversation": sent.headers["HX-Push-Url"]}


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("device", list(WIDTHS))
def test_pages_fit_and_every_control_is_reachable(browser, live_server, filled, device, theme):
    width, height = WIDTHS[device]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_cookies([{"name": "theme", "value": theme, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    pages = {"chat": filled["conversation"], "images": "/images", "gallery": "/gallery",
             "settings": "/settings", "usage": "/usage"}
    for name, path in pages.items():
        page.goto(live_server.url + path)
        if name == "images":
            expect(page.locator(".image-task img")).to_have_count(2, timeout=20_000)
        if name == "chat":
            expect(page.locator("article.answer pre.highlight")).to_be_visible()
        assert page.evaluate("document.documentElement.dataset.theme") == theme
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} overflows"
        assert page.evaluate(OFF_SCREEN_CONTROLS) == [], name
        shoot(page, f"{name}-{device}-{theme}", is_readme=theme == "light" and device != "tablet"
              and name in ("chat", "images", "gallery"))
    if device == "phone":
        page.goto(live_server.url + filled["conversation"])
        page.get_by_role("button", name="打开对话列表").click()
        expect(page.get_by_role("link", name="＋ 新对话")).to_be_in_viewport()
        expect(page.get_by_label("搜索对话")).to_be_in_viewport()
        assert page.evaluate(OFF_SCREEN_CONTROLS) == []
        shoot(page, f"drawer-{theme}", is_readme=False)
    context.close()


def test_every_click_on_the_theme_button_changes_the_colours(page, live_server):
    page.goto(live_server.url + "/")
    assert page.evaluate("document.documentElement.dataset.theme") == "system"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    button = page.locator("#theme-toggle")
    button.click()  # the system is light here: the first click shows dark
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_background != background
    expect(button).to_have_attribute("title", re.compile("深色"))
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(button).to_have_attribute("aria-label", re.compile("深色"))
    button.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    expect(button).to_have_attribute("aria-label", re.compile("浅色"))
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
    page.goto(live_server.url + "/settings")
    expect(page.get_by_label("外观")).to_have_value("light")
    page.get_by_label("外观").select_option("system")
    expect(page.locator("html")).to_have_attribute("data-theme", "system")
    page.reload()
    expect(button).to_have_attribute("aria-label", re.compile("跟随系统"))


TAPPABLE = """(el) => {
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return r.left >= 0 && r.right <= window.innerWidth && (hit === el || el.contains(hit));
}"""


def test_on_a_phone_every_main_link_is_on_screen_and_the_chat_options_fold(browser, live_server, filled):
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    for language in ("en", "zh"):  # English names are the longer ones
        context.add_cookies([{"name": "lang", "value": language, "url": live_server.url}])
        for path in (filled["conversation"], "/", "/images", "/gallery", "/usage", "/settings"):
            page.goto(live_server.url + path)
            links = page.locator("header nav a")
            expect(links).to_have_count(5)
            for link in links.all():
                assert link.evaluate(TAPPABLE), (language, path, link.inner_text())
            assert page.locator("#theme-toggle").evaluate(TAPPABLE), (language, path)
    expect(page.locator("#settings-appearance").get_by_role("link", name="English")).to_be_visible()
    page.goto(live_server.url + filled["conversation"])
    options = page.locator("#chat-options")
    assert options.bounding_box()["height"] < 50  # one line
    expect(page.get_by_label("模型")).to_be_hidden()
    options.get_by_text("对话设置").click()
    expect(page.get_by_label("模型")).to_be_visible()
    page.get_by_label("深度思考").check()
    expect(options.locator(".options-summary")).to_have_text("qwen-plus · 深度思考")
    page.mouse.click(180, 600)  # a tap outside (on the messages) closes the sheet
    expect(page.get_by_label("模型")).to_be_hidden()
    page.goto(live_server.url + "/usage")
    table = page.locator("table").first
    expect(table.get_by_role("columnheader", name="合计 tokens")).to_be_in_viewport()
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    context.close()


def test_moyan_can_be_added_to_a_home_screen_and_opens_full_screen(page, live_server):
    page.goto(live_server.url + "/")
    manifest_url = page.locator("link[rel=manifest]").evaluate("link => link.href")
    manifest = page.request.get(manifest_url).json()
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"any", "192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        response = page.request.get(live_server.url + icon["src"])
        assert response.ok and response.headers["content-type"].startswith(icon["type"])
    schemes = page.locator("meta[name=theme-color]").evaluate_all("metas => metas.map(m => m.media)")
    assert schemes == ["(prefers-color-scheme: light)", "(prefers-color-scheme: dark)"]
    page.locator("#theme-toggle").click()  # dark: the browser's bar follows the header
    header = page.locator("header").evaluate("h => getComputedStyle(h).backgroundColor")
    bar = page.locator("meta[name=theme-color]").first.get_attribute("content")
    assert bar == "#23201e" and header != "rgb(255, 255, 255)"

