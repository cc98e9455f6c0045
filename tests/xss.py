"""Hostile text for the XSS tests, and how a browser test finds out that one ran.

Each payload, if it ever ran, would open a dialog, set `window.__xss`, or make htmx ask
for /xss-probe. After putting payloads into a page, `assert_nothing_ran(page)` also
searches the page for anything that could run: event handlers, script URLs,
script-bearing elements, and htmx attributes inside what someone wrote (htmx would act
on them).
"""
from urllib.parse import urlsplit

PAYLOADS = [
    # Tags and event handlers
    "<script>alert(1)</script>",
    "<SCRIPT SRC=/xss-probe.js></SCRIPT>",
    '<img src=x onerror="window.__xss=1">',
    "<img src=x onerror=alert(1)//",  # never closed
    '<svg onload="window.__xss=1">',
    "<svg><script>window.__xss=1</script></svg>",
    '<body onload="window.__xss=1">',
    '<details open ontoggle="window.__xss=1">d</details>',
    '<input autofocus onfocus="window.__xss=1">',
    "<scr<script>ipt>window.__xss=1</scr</script>ipt>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=1>">',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    '<iframe src="javascript:parent.__xss=1"></iframe>',
    '<object data="javascript:window.__xss=1"></object>',
    '<form action="javascript:window.__xss=1"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    '<base href="javascript:window.__xss=1//">',
    # Breaking out of where the text is put
    '"><svg onload=window.__xss=1>',
    "'><img src=x onerror=window.__xss=1>",
    "</textarea><script>window.__xss=1</script>",
    "</title><script>window.__xss=1</script>",
    "</div></article><script>window.__xss=1</script>",
    "<!--<script>window.__xss=1</script>-->",
    "<![CDATA[<script>window.__xss=1</script>]]>",
    # Links in HTML
    '<a href="javascript:window.__xss=1">js</a>',
    '<a href="data:text/html,<script>alert(1)</script>">data</a>',
    '<a href="vbscript:msgbox(1)">vb</a>',
    # Links in Markdown
    "[js](javascript:window.__xss=1)",
    "[angle](<javascript:window.__xss=1>)",
    "[entity](jav&#x61;script:window.__xss=1)",
    "[entity2](&#106;avascript:alert(1))",
    "[tab](java\tscript:alert(1))",
    "[case](JaVaScRiPt:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[vb](vbscript:msgbox(1))",
    "[ref][r]\n\n[r]: javascript:window.__xss=1",
    "<javascript:window.__xss=1>",
    "<http://example.com/\"onmouseover=\"window.__xss=1>",
    '[title](https://example.com "t\\" onmouseover=\\"window.__xss=1")',
    "![img](javascript:alert(1))",
    '![img](x" onerror="window.__xss=1)',
    "```\"><img src=x onerror=window.__xss=1>\ncode\n```",
    "```html\n<script>window.__xss=1</script>\n```",
    # htmx would act on these if they ever became attributes
    '<div hx-get="/xss-probe" hx-trigger="load">hx</div>',
    '<a hx-on:click="window.__xss=1">hx-on</a>',
    '<div data-hx-get="/xss-probe" data-hx-trigger="load">data-hx</div>',
    '<div hx-ext="sse" sse-connect="/xss-probe" sse-swap="message">sse</div>',
    '<button hx-post="/xss-probe" hx-trigger="load" hx-swap-oob="true" id="messages">oob</button>',
    # Template syntax and CSS
    "{{ 7*7 }} {% if true %}jinja{% endif %} ${7*7}",
    "%3Cscript%3Ewindow.__xss=1%3C/script%3E 中文 &lt;b&gt;",
    "<style>*{background:url(\"javascript:window.__xss=1\")}</style>",
    '<p style="background:url(javascript:window.__xss=1)">css</p>',
]

# The ones that try to leave the text or attribute they are put in: enough for places that
# show a single text per page, where trying every payload would cost a page load each.
BREAKOUTS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="window.__xss=1">',
    '"><svg onload=window.__xss=1>',
    "'><img src=x onerror=window.__xss=1>",
    "</textarea><script>window.__xss=1</script>",
    "</title><script>window.__xss=1</script>",
    "</div></article><script>window.__xss=1</script>",
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=1>">',
    '<div hx-get="/xss-probe" hx-trigger="load">hx</div>',
    "%3Cscript%3Ewindow.__xss=1%3C/script%3E 中文 &lt;b&gt;",
]
assert set(BREAKOUTS) <= set(PAYLOADS)


def joined(payloads=PAYLOADS, limit=None):
    """The payloads as one text, each its own paragraph, at most `limit` characters."""
    text = ""
    for payload in payloads:
        if limit and len(text) + len(payload) + 2 > limit:
            break
        text += payload + "\n\n"
    return text.strip()


# Where the page shows what a person or a model wrote; the first group may hold only text.
TEXT_ONLY = (".streaming-text, .reasoning-text, .reasoning > div, article:not(.answer) > div:first-child,"
             " .message-error, #conversation-list .conversation-title, textarea, .image-task figcaption > span,"
             " .task-error, dd")
WRITTEN = TEXT_ONLY + ", .markdown, .image-task figcaption, .gallery-item"

FIND_PROBLEMS = """([textOnly, written]) => {
  const problems = [];
  const show = el => el.outerHTML.slice(0, 150);
  const URL_ATTRIBUTES = ["href", "src", "action", "formaction", "data", "xlink:href", "poster",
                          "background", "srcdoc"];
  const isScriptUrl = value => /^(javascript|data|vbscript):/i.test(value.replace(/[\\u0000-\\u0020]/g, ""));
  for (const el of document.querySelectorAll("*")) {
    if (el.matches("script:not([src]), iframe, frame, object, embed, base, style, meta[http-equiv]")) {
      problems.push("element: " + show(el));
    }
    for (const {name, value} of el.attributes) {
      if (name.startsWith("on")) problems.push("handler: " + show(el));
      if (URL_ATTRIBUTES.includes(name) && isScriptUrl(value)) problems.push("script URL: " + show(el));
    }
  }
  for (const box of document.querySelectorAll(textOnly)) {
    if (box.children.length) problems.push("element in text: " + show(box));
  }
  for (const el of document.querySelectorAll(written.split(",").map(s => s + " *").join(","))) {
    for (const name of el.getAttributeNames()) {
      if (/^(data-)?hx-|^sse-/.test(name)) problems.push("htmx attribute: " + show(el));
    }
  }
  return problems;
}"""


def watch(page):
    """Write down every dialog and every request for /xss-probe."""
    page.dialogs, page.probes = [], []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda request: urlsplit(request.url).path.startswith("/xss-probe")
            and page.probes.append(request.url))
    return page


def assert_nothing_ran(page, where=""):
    problems = page.evaluate(FIND_PROBLEMS, [TEXT_ONLY, WRITTEN])
    assert page.evaluate("window.__xss") is None, where
    assert page.dialogs == [], where
    assert page.probes == [], where
    assert problems == [], where
