// Moyan's few behaviours that htmx attributes and CSS do not cover, as one module (no inline
// scripts anywhere). Every event is delegated from the document, one listener per event type:
// HANDLERS at the end lists what each does. Words it shows come translated from data-
// attributes on <body> (templates/base.html).

// Enter sends, Shift+Enter is a newline; an IME composition's Enter is left alone.
function sendOnEnter(event) {
  const box = event.target;
  if (box.id !== "message-text" || event.key !== "Enter" || event.shiftKey || event.isComposing) return;
  if (window.matchMedia("(pointer: coarse)").matches) return;  // phone keyboards have no Shift: Enter is a newline
  event.preventDefault();
  if (box.value.trim()) box.form.requestSubmit();
}

// A sent message comes back with the box and the pictures emptied (partials/sent.html); the
// box keeps the focus, also when 发送 was clicked. A chosen picture can be chosen again.
function afterSending(event) {
  const form = event.detail.elt;
  if (form.id === "composer" && event.detail.successful) document.getElementById("message-text").focus();
  if (form.id === "picture-form") form.reset();
}

// Ctrl/Cmd+K: a new chat. Esc: stop the running answer. "/": search conversations.
function shortcuts(event) {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    sessionStorage.setItem("focusComposer", "1");  // the new page focuses its message box
    window.location.href = "/";
  } else if (event.key === "Escape") {
    document.querySelector("article[aria-busy=true] .stop-button")?.click();
  } else if (event.key === "/" && !event.target.closest("input, textarea, select, [contenteditable]")) {
    const search = document.getElementById("conversation-search");
    if (search) {
      event.preventDefault();
      search.focus();
    }
  }
}

// Keep the newest text in view while an answer streams, unless the reader scrolled up.
let isPinned = true;
function followScroll(event) {
  const pane = event.target;
  if (pane.id === "messages-scroll") isPinned = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
}
function scrollToEnd() {
  const pane = document.getElementById("messages-scroll");
  if (pane && isPinned) pane.scrollTop = pane.scrollHeight;
}
function scrollAfterSwap(event) {
  if (event.detail.target?.id === "chat-pane") isPinned = true;
  scrollToEnd();
}

// Another provider: its model ids suggested; the chat's model box empties (the provider's
// default is its placeholder), the painting's takes the provider's default model.
function followProvider(event) {
  const select = event.target;
  const option = select.selectedOptions?.[0];
  if (select.id === "chat-provider") {
    const model = document.getElementById("chat-model");
    model.setAttribute("list", select.value + "-model-ids");
    model.placeholder = option.dataset.placeholder;
    model.value = "";
  } else if (select.id === "paint-provider") {
    const model = document.getElementById("paint-model");
    model.value = option.dataset.defaultModel;
    model.setAttribute("list", "paint-model-ids-" + select.value);
  }
}

// A painting size preset fills in width and height (the custom ones show through CSS).
function fillSize(event) {
  const select = event.target;
  if (!select.classList.contains("size-select") || select.value === "custom") return;
  const [width, height] = select.value.split("*");
  select.form.elements.width.value = width;
  select.form.elements.height.value = height;
}

// The folded options line (on a phone) names the model and says if 深度思考 is on.
function summarizeOptions(event) {
  if (!event.target.closest("#chat-options")) return;
  const form = event.target.form;
  const provider = form.elements.provider;
  const model = form.elements.model.value.trim() || provider.options[provider.selectedIndex].dataset.defaultModel;
  const thinking = form.elements.thinking;
  const label = thinking.closest("label").textContent.trim();
  form.querySelector(".options-summary").textContent = model + (thinking.checked ? " · " + label : "");
}

function closeAlert(event) {
  event.target.closest(".alert-close")?.closest(".alert").remove();
}

// On a phone the sidebar is a drawer over the chat, closed by a tap outside or by opening a chat.
function setDrawer(isOpen) {
  const sidebar = document.getElementById("sidebar");
  sidebar.classList.toggle("flex", isOpen);
  sidebar.classList.toggle("hidden", !isOpen);
  document.getElementById("sidebar-backdrop").classList.toggle("hidden", !isOpen);
  const toggle = document.getElementById("sidebar-toggle");
  toggle.setAttribute("aria-expanded", String(isOpen));
  toggle.querySelector(".drawer-closed").classList.toggle("hidden", isOpen);
  toggle.querySelector(".drawer-open").classList.toggle("hidden", !isOpen);
}
function toggleDrawer(event) {
  if (event.target.closest("#sidebar-toggle")) setDrawer(document.getElementById("sidebar").classList.contains("hidden"));
  if (event.target.id === "sidebar-backdrop") setDrawer(false);
}
function closeDrawerOnOpening(event) {
  const elt = event.detail.elt;
  if (elt.tagName === "A" && document.getElementById("sidebar")?.contains(elt) &&
      window.matchMedia("(max-width: 767px)").matches) {
    setDrawer(false);
  }
}

// Copy buttons: a code block's own, or data-copy-target naming the element whose text is copied.
function copy(event) {
  const button = event.target.closest(".code-copy, [data-copy-target]");
  if (!button) return;
  const text = button.classList.contains("code-copy")
    ? button.parentElement.querySelector("code").innerText.replace(/\n$/, "")
    : document.querySelector(button.dataset.copyTarget).innerText;
  navigator.clipboard.writeText(text).then(() => {
    const label = button.textContent;
    button.textContent = document.body.dataset.copiedLabel;
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}

// A copy button on each code block, added to answers as they appear.
function addCodeCopyButtons(root) {
  root.querySelectorAll(".markdown pre").forEach((pre) => {
    if (pre.querySelector(".code-copy")) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "code-copy";
    button.textContent = document.body.dataset.copyLabel;
    button.setAttribute("aria-label", document.body.dataset.copyCodeLabel);
    pre.appendChild(button);
  });
}

// The theme button switches between light and dark, so every click changes what one sees
// (from "follow the system" it goes to the opposite of what the system shows); the settings
// page offers "follow the system" again. The choice is kept in a cookie so the server renders
// the page in it next time (no flash of the other theme).
function shownTheme() {
  const theme = document.documentElement.dataset.theme;
  if (theme !== "system") return theme;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}
function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  document.cookie = "theme=" + theme + "; path=/; max-age=31536000; SameSite=Lax";
  const button = document.getElementById("theme-toggle");
  const label = button.dataset["label" + theme[0].toUpperCase() + theme.slice(1)];
  button.setAttribute("aria-label", label);
  button.title = label;
  const select = document.getElementById("theme-select");
  if (select) select.value = theme;
  const colours = {light: "#ffffff", dark: "#23201e"};  // the header's, as in templates/base.html
  document.querySelectorAll("meta[name=theme-color]").forEach((meta) => {
    meta.content = colours[theme === "system" ? meta.dataset.scheme : theme];
  });
}
function toggleTheme(event) {
  if (event.target.closest("#theme-toggle")) setTheme(shownTheme() === "dark" ? "light" : "dark");
}
function chooseTheme(event) {
  if (event.target.id === "theme-select") setTheme(event.target.value);
}

// The open conversation is marked in the sidebar, from the address: clicking one swaps only
// #chat-pane, and a new chat, a renamed item or a history step change what is open.
function markCurrent() {
  const open = window.location.pathname;
  document.querySelectorAll(".conversation-link").forEach((link) => {
    if (link.getAttribute("href") === open) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
}

// A conversation's menu, and the options sheet on a phone, close on a click elsewhere and on Esc.
function closeMenus(except) {
  document.querySelectorAll(".conversation-menu[open], .options-sheet[open]").forEach((menu) => {
    if (menu !== except) menu.open = false;
  });
}
function closeOtherMenus(event) {
  closeMenus(event.target.closest(".conversation-menu, .options-sheet"));
}
function closeMenusOnEscape(event) {
  if (event.key === "Escape") closeMenus(null);
}

// Rename in place: the title becomes a box holding it; Enter saves, Esc or leaving cancels.
function rename(event) {
  const button = event.target.closest(".rename-button");
  if (!button) return;
  const item = button.closest("li");
  const link = item.querySelector(".conversation-link");
  const menu = item.querySelector(".conversation-menu");
  const box = document.createElement("input");
  box.name = "title";
  box.value = item.dataset.title;
  box.maxLength = 100;
  box.enterKeyHint = "done";
  box.className = "rename-input mx-1 my-0.5 min-w-0 flex-1 rounded-md border border-teal-600 bg-white px-2 py-1 text-base md:text-sm";
  box.setAttribute("aria-label", document.body.dataset.renameLabel);
  link.hidden = true;
  menu.open = false;
  menu.hidden = true;
  link.after(box);
  box.focus();
  box.select();
  box.scrollLeft = 0;  // show the title's start, not the end that select() scrolled to
  let isDone = false;
  function restore() {
    box.remove();
    link.hidden = false;
    menu.hidden = false;
    link.focus();
  }
  function finish(save) {
    if (isDone) return;
    isDone = true;
    const title = box.value.trim();
    if (save && title && title !== item.dataset.title) {
      // The saved item replaces this one; if saving fails (an alert says why), undo.
      htmx.ajax("POST", item.dataset.renameUrl, {source: box, target: item, swap: "outerHTML", values: {title}})
        .then(() => { if (box.isConnected) restore(); });
      return;
    }
    restore();
  }
  box.addEventListener("keydown", (event) => {
    if (event.isComposing) return;
    if (event.key === "Enter") { event.preventDefault(); finish(true); }
    if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); finish(false); }
  });
  box.addEventListener("blur", () => finish(false));
}

// "用这段画图" takes the part of the answer the reader selected, if any, else all of it.
// The selection is read at mousedown: a click on the link may clear it first.
const MAX_SELECTION = 2001;  // one more than the longest prompt: the server says when it cut
let selected = "";
function selectionIn(article) {
  const selection = window.getSelection();
  const answer = article.querySelector(".markdown");
  if (!selection || selection.isCollapsed || !answer) return "";
  if (!answer.contains(selection.anchorNode) || !answer.contains(selection.focusNode)) return "";
  return selection.toString().trim();
}
function keepSelection(event) {
  const link = event.target.closest("a.paint-from-answer");
  if (link) selected = selectionIn(link.closest("article"));
}
function paintSelection(event) {
  const link = event.target.closest("a.paint-from-answer");
  if (!link) return;
  const text = selected || selectionIn(link.closest("article"));
  selected = "";
  if (!text) return;
  event.preventDefault();
  window.location.href = link.href + "&selection=" + encodeURIComponent(text.slice(0, MAX_SELECTION));
}

// Pictures for a message: chosen with the button, pasted, or dropped on the composer. Each
// goes up at once (the hidden #picture-form) and comes back as a chip in #composer-pictures.
function upload(files) {
  const pictures = Array.from(files).filter((file) => file.type.startsWith("image/"));
  if (!pictures.length) return false;
  const input = document.getElementById("picture-input");
  const transfer = new DataTransfer();
  pictures.forEach((file) => transfer.items.add(file));
  input.files = transfer.files;
  input.dispatchEvent(new Event("change", {bubbles: true}));
  return true;
}
const isInComposer = (event) => event.target.closest?.("#composer");
function pastePictures(event) {
  if (isInComposer(event) && event.clipboardData && upload(event.clipboardData.files)) event.preventDefault();
}
function allowDrop(event) {
  if (isInComposer(event)) event.preventDefault();
}
function dropPictures(event) {
  if (!isInComposer(event)) return;
  event.preventDefault();
  upload(event.dataTransfer.files);
}
function removePicture(event) {
  event.target.closest(".picture-remove")?.closest(".attached-picture").remove();
}

// What htmx added (and, at start, the page): copy buttons on code, the open conversation marked.
function prepare(root) {
  addCodeCopyButtons(root);
  markCurrent();
}

const HANDLERS = {
  keydown: [sendOnEnter, shortcuts, closeMenusOnEscape],
  input: [summarizeOptions],
  change: [followProvider, fillSize, summarizeOptions, chooseTheme],
  click: [closeAlert, toggleDrawer, copy, toggleTheme, closeOtherMenus, rename, paintSelection, removePicture],
  mousedown: [keepSelection],
  paste: [pastePictures],
  dragover: [allowDrop],
  drop: [dropPictures],
  scroll: [followScroll],
  "htmx:beforeRequest": [closeDrawerOnOpening],
  "htmx:afterRequest": [afterSending],
  "htmx:sseMessage": [scrollToEnd],
  "htmx:afterSettle": [scrollAfterSwap, markCurrent],
  "htmx:load": [(event) => prepare(event.detail.elt)],
  "htmx:pushedIntoHistory": [markCurrent],
  "htmx:historyRestore": [markCurrent],
};
for (const [type, handlers] of Object.entries(HANDLERS)) {
  // scroll does not bubble: the messages pane's is caught on its way down.
  document.addEventListener(type, (event) => handlers.forEach((handle) => handle(event)), {capture: type === "scroll"});
}

// A module runs once the page is parsed.
prepare(document);
scrollToEnd();
if (sessionStorage.getItem("focusComposer")) document.getElementById("message-text")?.focus();
sessionStorage.removeItem("focusComposer");
