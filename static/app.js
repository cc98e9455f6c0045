// Moyan's few behaviours that htmx attributes do not cover. No inline scripts anywhere.
// Words it shows come translated from data- attributes on <body> (templates/base.html).
(function () {
  "use strict";

  // Enter sends, Shift+Enter is a newline; an IME composition's Enter is left alone.
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (box.id !== "message-text" || event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (window.matchMedia("(pointer: coarse)").matches) return;  // phone keyboards have no Shift: Enter is a newline
    event.preventDefault();
    if (box.value.trim()) box.form.requestSubmit();
  });

  // A sent message is shown at once: clear the box once the server has it.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt.id === "composer" && event.detail.successful) {
      var box = document.getElementById("message-text");
      box.value = "";
      box.focus();
    }
  });

  // Keep the newest text in view while an answer streams, unless the reader scrolled up.
  var isPinned = true;
  document.addEventListener("scroll", function (event) {
    var pane = event.target;
    if (pane.id === "messages-scroll") {
      isPinned = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
    }
  }, true);
  function scrollToEnd() {
    var pane = document.getElementById("messages-scroll");
    if (pane && isPinned) pane.scrollTop = pane.scrollHeight;
  }
  document.addEventListener("htmx:sseMessage", scrollToEnd);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "chat-pane") isPinned = true;
    scrollToEnd();
  });
  document.addEventListener("DOMContentLoaded", scrollToEnd);

  // The model box suggests the ids of the chosen provider.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.id === "chat-provider") {
      var model = document.getElementById("chat-model");
      var option = select.options[select.selectedIndex];
      model.setAttribute("list", select.value + "-model-ids");
      model.placeholder = option.dataset.placeholder;
      model.value = "";
    }
    if (select.closest("#chat-options")) summarizeOptions(select.form);
    if (select.classList.contains("region-select")) {
      var custom = select.closest("form").querySelector(".custom-base-url");
      custom.classList.toggle("hidden", select.value !== "custom");
    }
  });

  // The folded options line (on a phone) names the model and says if 深度思考 is on.
  function summarizeOptions(form) {
    var provider = form.elements.provider;
    var model = form.elements.model.value.trim() ||
      provider.options[provider.selectedIndex].dataset.defaultModel;
    var thinking = form.elements.thinking;
    var label = thinking.closest("label").textContent.trim();
    form.querySelector(".options-summary").textContent = model + (thinking.checked ? " · " + label : "");
  }
  document.addEventListener("input", function (event) {
    if (event.target.id === "chat-model") summarizeOptions(event.target.form);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("alert-close")) button.closest(".alert").remove();
    if (button.id === "sidebar-toggle") {
      setDrawer(document.getElementById("sidebar").classList.contains("hidden"));
    }
  });

  // On a phone the sidebar is a drawer over the chat, closed by a tap outside or by opening a chat.
  function setDrawer(isOpen) {
    var sidebar = document.getElementById("sidebar");
    sidebar.classList.toggle("flex", isOpen);
    sidebar.classList.toggle("hidden", !isOpen);
    document.getElementById("sidebar-backdrop").classList.toggle("hidden", !isOpen);
    var toggle = document.getElementById("sidebar-toggle");
    toggle.setAttribute("aria-expanded", String(isOpen));
    toggle.querySelector(".drawer-closed").classList.toggle("hidden", isOpen);
    toggle.querySelector(".drawer-open").classList.toggle("hidden", !isOpen);
  }
  document.addEventListener("click", function (event) {
    if (event.target.id === "sidebar-backdrop") setDrawer(false);
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var sidebar = document.getElementById("sidebar");
    if (sidebar && sidebar.contains(event.detail.elt) && event.detail.elt.tagName === "A" &&
        window.matchMedia("(max-width: 767px)").matches) {
      setDrawer(false);
    }
  });
})();

(function () {
  "use strict";

  // Copy buttons: data-copy-target names the element whose text is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copyTarget);
    navigator.clipboard.writeText(source.innerText).then(function () {
      var label = button.textContent;
      button.textContent = document.body.dataset.copiedLabel;
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Another painting provider: its own default model, and its model ids suggested.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.id !== "paint-provider") return;
    var model = document.getElementById("paint-model");
    model.value = select.options[select.selectedIndex].dataset.defaultModel;
    model.setAttribute("list", "paint-model-ids-" + select.value);
  });

  // The painting form shows width and height only for a custom size.
  document.addEventListener("change", function (event) {
    if (event.target.classList.contains("size-select")) {
      var custom = event.target.form.querySelector(".custom-size");
      custom.classList.toggle("hidden", event.target.value !== "custom");
      if (event.target.value !== "custom") {
        var sides = event.target.value.split("*");
        event.target.form.elements.width.value = sides[0];
        event.target.form.elements.height.value = sides[1];
      }
    }
  });
})();

(function () {
  "use strict";

  function isTyping(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  // Ctrl/Cmd+K: a new chat. Esc: stop the running answer. "/": search conversations.
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      sessionStorage.setItem("focusComposer", "1");  // the new page focuses its message box
      window.location.href = "/";
    } else if (event.key === "Escape") {
      var stop = document.querySelector("article[aria-busy=true] .stop-button");
      if (stop) stop.click();
    } else if (event.key === "/" && !isTyping(event.target)) {
      var search = document.getElementById("conversation-search");
      if (search) {
        event.preventDefault();
        search.focus();
      }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("message-text");
    if (sessionStorage.getItem("focusComposer") && box) box.focus();
    sessionStorage.removeItem("focusComposer");
  });

  // A copy button on each code block, added to answers as they appear.
  function addCodeCopyButtons(root) {
    root.querySelectorAll(".markdown pre").forEach(function (pre) {
      if (pre.querySelector(".code-copy")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "code-copy";
      button.textContent = document.body.dataset.copyLabel;
      button.setAttribute("aria-label", document.body.dataset.copyCodeLabel);
      pre.appendChild(button);
    });
  }
  document.addEventListener("htmx:load", function (event) { addCodeCopyButtons(event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () { addCodeCopyButtons(document); });

  function copied(button) {
    var label = button.textContent;
    button.textContent = document.body.dataset.copiedLabel;
    setTimeout(function () { button.textContent = label; }, 1500);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".code-copy, .answer-copy");
    if (!button) return;
    var text = button.classList.contains("code-copy")
      ? button.parentElement.querySelector("code").innerText.replace(/\n$/, "")
      : button.closest("article").querySelector(".markdown").innerText;
    navigator.clipboard.writeText(text).then(function () { copied(button); });
  });
})();

(function () {
  "use strict";

  // The theme button switches between light and dark, so every click changes what one sees
  // (from "follow the system" it goes to the opposite of what the system shows); the settings
  // page offers "follow the system" again. The choice is kept in a cookie so the server renders
  // the page in it next time (no flash of the other theme).
  function shownTheme() {
    var theme = document.documentElement.dataset.theme;
    if (theme !== "system") return theme;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function setTheme(theme) {
    document.documentElement.dataset.theme = theme;
    document.cookie = "theme=" + theme + "; path=/; max-age=31536000; SameSite=Lax";
    var button = document.getElementById("theme-toggle");
    var label = button.dataset["label" + theme[0].toUpperCase() + theme.slice(1)];
    button.setAttribute("aria-label", label);
    button.title = label;
    var select = document.getElementById("theme-select");
    if (select) select.value = theme;
    var colours = {light: "#ffffff", dark: "#23201e"};  // the header's, as in templates/base.html
    document.querySelectorAll("meta[name=theme-color]").forEach(function (meta) {
      meta.content = colours[theme === "system" ? meta.dataset.scheme : theme];
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("#theme-toggle")) setTheme(shownTheme() === "dark" ? "light" : "dark");
  });
  document.addEventListener("change", function (event) {
    if (event.target.id === "theme-select") setTheme(event.target.value);
  });
})();

(function () {
  "use strict";

  // The open conversation is marked in the sidebar, from the address: clicking one swaps only
  // #chat-pane, and a new chat, a renamed item or a history step change what is open.
  function markCurrent() {
    var open = window.location.pathname;
    document.querySelectorAll(".conversation-link").forEach(function (link) {
      if (link.getAttribute("href") === open) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
  }
  ["DOMContentLoaded", "popstate", "htmx:load", "htmx:afterSettle", "htmx:pushedIntoHistory",
   "htmx:historyRestore"].forEach(function (name) { document.addEventListener(name, markCurrent); });

  // A conversation's menu, and the options sheet on a phone, close on a click elsewhere and on Esc.
  var MENUS = ".conversation-menu, .options-sheet";
  function closeMenus(except) {
    document.querySelectorAll(".conversation-menu[open], .options-sheet[open]").forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest(MENUS));
    var rename = event.target.closest(".rename-button");
    if (rename) startRename(rename.closest("li"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeMenus(null);
  });

  // Rename in place: the title becomes a box holding it; Enter saves, Esc or leaving cancels.
  function startRename(item) {
    var link = item.querySelector(".conversation-link");
    var menu = item.querySelector(".conversation-menu");
    var box = document.createElement("input");
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
    var isDone = false;
    function finish(save) {
      if (isDone) return;
      isDone = true;
      var title = box.value.trim();
      if (save && title && title !== item.dataset.title) {
        // The saved item replaces this one; if saving fails (an alert says why), undo.
        htmx.ajax("POST", item.dataset.renameUrl,
                  {source: box, target: item, swap: "outerHTML", values: {title: title}})
          .then(function () { if (box.isConnected) restore(); });
        return;
      }
      restore();
    }
    function restore() {
      box.remove();
      link.hidden = false;
      menu.hidden = false;
      link.focus();
    }
    box.addEventListener("keydown", function (event) {
      if (event.isComposing) return;
      if (event.key === "Enter") { event.preventDefault(); finish(true); }
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); finish(false); }
    });
    box.addEventListener("blur", function () { finish(false); });
  }

  // "用这段画图" takes the part of the answer the reader selected, if any, else all of it.
  // The selection is read at mousedown: a click on the link may clear it first.
  var MAX_SELECTION = 2001;  // one more than the longest prompt: the server says when it cut
  var selected = "";
  function selectionIn(article) {
    var selection = window.getSelection();
    var answer = article.querySelector(".markdown");
    if (!selection || selection.isCollapsed || !answer) return "";
    if (!answer.contains(selection.anchorNode) || !answer.contains(selection.focusNode)) return "";
    return selection.toString().trim();
  }
  document.addEventListener("mousedown", function (event) {
    var link = event.target.closest("a.paint-from-answer");
    if (link) selected = selectionIn(link.closest("article"));
  });
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.paint-from-answer");
    if (!link) return;
    var text = selected || selectionIn(link.closest("article"));
    selected = "";
    if (!text) return;
    event.preventDefault();
    window.location.href = link.href + "&selection=" + encodeURIComponent(text.slice(0, MAX_SELECTION));
  });
})();

(function () {
  "use strict";

  // Pictures for a message: chosen with the button, pasted, or dropped on the composer. Each
  // goes up at once (the hidden #picture-form) and comes back as a chip in #composer-pictures.
  function upload(files) {
    var pictures = Array.prototype.filter.call(files, function (file) { return file.type.indexOf("image/") === 0; });
    if (!pictures.length) return false;
    var input = document.getElementById("picture-input");
    var transfer = new DataTransfer();
    pictures.forEach(function (file) { transfer.items.add(file); });
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }
  document.addEventListener("paste", function (event) {
    if (!event.target.closest || !event.target.closest("#composer")) return;
    if (event.clipboardData && upload(event.clipboardData.files)) event.preventDefault();
  });
  document.addEventListener("dragover", function (event) {
    if (event.target.closest && event.target.closest("#composer")) event.preventDefault();
  });
  document.addEventListener("drop", function (event) {
    if (!event.target.closest || !event.target.closest("#composer")) return;
    event.preventDefault();
    upload(event.dataTransfer.files);
  });
  document.addEventListener("click", function (event) {
    var remove = event.target.closest(".picture-remove");
    if (remove) remove.closest(".attached-picture").remove();
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form.id === "picture-form") form.reset();  // the same picture can be chosen again
    if (form.id === "composer" && event.detail.successful) {
      document.getElementById("composer-pictures").innerHTML = "";
    }
  });
})();
