// The chat page: ask, render answer cards, copy macros (also by Alt+C), open alternatives, send
// feedback, keep the conversation in this browser across reloads (the playbook browser is in
// playbook.js).
"use strict";

(function () {
  const P = window.Playbook;
  const { el, requestJSON, percent, announce } = P;
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const sendButton = document.getElementById("send");
  const conversation = document.getElementById("conversation");
  const welcome = document.getElementById("welcome");
  const composer = document.getElementById("composer");
  const clearButton = document.getElementById("clear-history");
  const browserDialog = document.getElementById("playbook-browser");
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const BAND_WORDS = { high: "high confidence", medium: "medium confidence", low: "low confidence" };
  // Confidences are calibrated probabilities that the card is the right one. An alternative
  // below 1 in 10 is noise for the agent: it goes behind "Show more".
  const ALSO_CLOSE_MIN = 0.10;
  const SHORTCUT = "Alt+C";
  // app.records.NEEDS_DETAIL: a question not answered because several cards fit it.
  const NEEDS_DETAIL = "Several entries could fit and the question does not say which: add a " +
    "detail (the vendor, how long ago, the order's status) and ask again.";
  let uniqueId = 0;

  function nextId(prefix) {
    uniqueId += 1;
    return prefix + "-" + uniqueId;
  }

  function scrollBehavior() {
    return reducedMotion.matches ? "auto" : "smooth";
  }

  // ------------------------------------------------------------ history in this browser

  // The conversation is kept in localStorage (this browser only, nothing is sent anywhere) as
  // the records it was drawn from, and drawn again from them on the next visit. Records:
  // {type: "question", text}, {type: "answer", answer, feedback}, {type: "entry", entry, alt}.
  const chatHistory = (function () {
    const KEY = "playbook-assistant.chat-history.v1";
    const MAX_RECORDS = 200;  // about a hundred questions with their answers

    // Kept no longer than the server keeps logged questions (PLAYBOOK_RETENTION_DAYS; 0: no
    // limit): customer text in a shared browser must not outlive the retention promise.
    const keepDays = Number(form.dataset.keepDays || "0");

    function fresh(record) {
      return !keepDays || typeof record.at !== "number" || Date.now() - record.at <= keepDays * 86400000;
    }

    function read() {
      try {
        const records = JSON.parse(window.localStorage.getItem(KEY) || "[]");
        return Array.isArray(records) ? records.filter(fresh) : [];
      } catch (err) {
        return [];
      }
    }

    function write(records) {
      try {
        window.localStorage.setItem(KEY, JSON.stringify(records.slice(-MAX_RECORDS)));
      } catch (err) {
        // Storage full or turned off: the chat works, it is just not kept.
      }
    }

    return {
      read: read,
      // Read before each write, so two open tabs add to one history instead of overwriting.
      append: function (records) {
        const now = Date.now();
        write(read().concat(records.map(function (r) { return Object.assign({ at: now }, r); })));
      },
      setFeedback: function (queryId, feedback) {
        write(read().map(function (record) {
          return record.type === "answer" && record.answer.query_id === queryId
            ? Object.assign({}, record, { feedback: feedback }) : record;
        }));
      },
      clear: function () {
        try { window.localStorage.removeItem(KEY); } catch (err) { /* nothing kept */ }
      },
    };
  })();

  // ------------------------------------------------------------ turns

  // Show the newest turn; a card taller than the screen is shown from its top, where the
  // answer and the macro are.
  function reveal(node) {
    const room = window.innerHeight - 160;
    const block = node.getBoundingClientRect().height > room ? "start" : "end";
    node.scrollIntoView({ block: block, behavior: scrollBehavior() });
  }

  // Scroll just enough that `node` is not under the sticky composer (nor the top bar).
  function keepClearOfComposer(node) {
    const rect = node.getBoundingClientRect();
    const bottom = composer.getBoundingClientRect().top - 8;
    const top = document.querySelector(".topbar").getBoundingClientRect().bottom + 8;
    const by = Math.min(rect.bottom - bottom, rect.top - top);
    if (rect.bottom > bottom && by > 0) window.scrollBy({ top: by, behavior: scrollBehavior() });
  }

  function showConversation(hasTurns) {
    if (welcome) welcome.hidden = hasTurns;
    clearButton.hidden = !hasTurns;
  }

  function addTurn(kind, child, quiet) {
    showConversation(true);
    const item = el("li", "turn turn--" + kind);
    item.appendChild(child);
    conversation.appendChild(item);
    if (!quiet) reveal(item);
    markShortcutTarget();
    return item;
  }

  // Alt+C copies from the newest card: its Copy button carries aria-keyshortcuts (which screen
  // readers announce, and the stylesheet shows beside the button).
  function markShortcutTarget() {
    conversation.querySelectorAll(".copy[aria-keyshortcuts]").forEach(function (button) {
      button.removeAttribute("aria-keyshortcuts");
    });
    const last = conversation.lastElementChild;
    const button = last && last.classList.contains("turn--bot") ? last.querySelector(".copy") : null;
    if (button) button.setAttribute("aria-keyshortcuts", SHORTCUT);
  }

  // ------------------------------------------------------------ pieces of a card

  function confidenceBadge(confidence, band) {
    const wrap = el("div", "confidence confidence--" + band);
    const label = el("span", "confidence-label", percent(confidence) + " · " + BAND_WORDS[band]);
    const meter = el("span", "meter");
    meter.setAttribute("aria-hidden", "true");
    const fill = el("span", "meter-fill");
    fill.style.width = Math.max(3, Math.round(confidence * 100)) + "%";
    meter.appendChild(fill);
    wrap.append(label, meter);
    return wrap;
  }

  function alternativeButton(alt) {
    const button = el("button", "alt");
    button.type = "button";
    button.append(el("span", "alt-question", alt.source_question),
                  el("span", "alt-confidence alt-confidence--" + alt.band, percent(alt.confidence)));
    button.addEventListener("click", function () { openEntry(alt); });
    return button;
  }

  function alternativeRows(alternatives) {
    const list = el("ul", "alt-list");
    alternatives.forEach(function (alt) {
      const item = el("li");
      item.appendChild(alternativeButton(alt));
      list.appendChild(item);
    });
    return list;
  }

  // Alternatives with a real chance (ALSO_CLOSE_MIN) are listed; the rest wait behind a
  // disclosure, so three 0 % rows no longer take half the card.
  function alternativesList(alternatives, title) {
    const section = el("section", "alternatives");
    section.appendChild(el("h3", "kicker", title));
    const likely = alternatives.filter(function (a) { return a.confidence >= ALSO_CLOSE_MIN; });
    const unlikely = alternatives.filter(function (a) { return a.confidence < ALSO_CLOSE_MIN; });
    if (likely.length) section.appendChild(alternativeRows(likely));
    if (unlikely.length) {
      const more = el("details", "alt-more");
      more.appendChild(el("summary", "alt-more-summary",
        "Show " + unlikely.length + (likely.length ? " more" : "") + " (each under " +
        percent(ALSO_CLOSE_MIN) + ")"));
      more.appendChild(alternativeRows(unlikely));
      section.appendChild(more);
    }
    return section;
  }

  function cardTop(kicker, badge) {
    const top = el("div", "card-top");
    top.appendChild(el("h2", "kicker", kicker));
    if (badge) top.appendChild(badge);
    return top;
  }

  function sourceBlock(text, tags) {
    const source = el("div", "source");
    source.appendChild(el("p", "matched", text));
    if (tags.length) source.appendChild(P.tagChips(tags));
    return source;
  }

  // Close cards the question rules out ("applies to Best Buy orders; your question mentions
  // Home Depot"): shown with the reason, never as the answer.
  function ruledOutBlock(ruledOut) {
    const section = el("section", "ruled-out");
    section.setAttribute("role", "note");
    section.appendChild(el("h3", "kicker",
      ruledOut.length === 1 ? "Not this card" : "Not these cards"));
    const list = el("ul", "ruled-out-list");
    ruledOut.forEach(function (item) {
      const row = el("li", "ruled-out-item");
      row.appendChild(el("span", "ruled-out-question", item.source_question));
      row.appendChild(el("span", "ruled-out-reason", "It " + item.reason + "."));
      list.appendChild(row);
    });
    section.appendChild(list);
    return section;
  }

  // ------------------------------------------------------------ feedback

  // Drawn as SVG (paths from Feather icons, MIT) because emoji fonts are missing on many desks.
  const THUMB_PATHS = {
    up: ["M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3z",
         "M7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3"],
    down: ["M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3z",
           "M17 2h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17"],
  };

  function thumbIcon(direction) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "thumb-icon");
    svg.setAttribute("aria-hidden", "true");
    THUMB_PATHS[direction].forEach(function (d) {
      const path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }

  function thumbButton(direction, text, label) {
    const button = el("button", "thumb thumb--" + direction);
    button.type = "button";
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-pressed", "false");
    button.append(thumbIcon(direction), el("span", "thumb-text", text));
    return button;
  }

  function choiceButton(text, className, onPick) {
    const choice = el("button", "choice " + className, text);
    choice.type = "button";
    choice.setAttribute("aria-pressed", "false");
    choice.addEventListener("click", function () { onPick(choice); });
    return choice;
  }

  // After 👎: the answer's alternatives and "none of these" one click away, and a type-ahead
  // over every entry (filtered in the browser: the typed words are not sent).
  function entryPicker(answer, pick) {
    const picker = el("div", "picker");
    picker.hidden = true;
    const title = el("p", "picker-title", "Which entry was right?");
    title.id = nextId("picker-title");
    const choices = el("div", "picker-choices");
    choices.setAttribute("role", "group");
    choices.setAttribute("aria-labelledby", title.id);
    answer.alternatives.forEach(function (alt) {
      const choice = choiceButton(alt.source_question, "", function (button) {
        pick(button, alt.entry_id, alt.source_question);
      });
      choice.dataset.entryId = alt.entry_id;
      choices.appendChild(choice);
    });
    choices.appendChild(choiceButton("None of these", "choice--none", function (button) {
      pick(button, null, null);
    }));

    const searchId = nextId("picker-search");
    const label = el("label", "picker-label", "Or search every entry");
    label.htmlFor = searchId;
    const search = el("input", "search-input picker-search");
    search.type = "search";
    search.id = searchId;
    search.autocomplete = "off";
    search.spellcheck = false;
    const count = el("p", "picker-count");
    count.id = nextId("picker-count");
    count.setAttribute("role", "status");
    search.setAttribute("aria-describedby", count.id);
    const results = el("ul", "picker-results");
    results.setAttribute("aria-label", "Matching entries");
    const LIMIT = 8;

    function showResults(query, entries) {
      results.replaceChildren();
      if (!query.trim()) {
        count.textContent = "";
        return;
      }
      const found = P.searchEntries(entries, query);
      found.slice(0, LIMIT).forEach(function (entry) {
        const item = el("li");
        item.appendChild(choiceButton(entry.question, "choice--found", function (button) {
          pick(button, entry.id, entry.question);
        }));
        results.appendChild(item);
      });
      count.textContent = found.length === 0 ? "No entry has all these words."
        : found.length > LIMIT ? "Showing " + LIMIT + " of " + found.length + " entries: type more to narrow."
        : found.length + (found.length === 1 ? " entry matches." : " entries match.");
      keepClearOfComposer(picker);
    }

    search.addEventListener("input", function () {
      const query = search.value;
      P.loadEntries().then(function (entries) {
        if (search.value === query) showResults(query, entries);
      }, function (err) {
        count.textContent = "Couldn't load the entries: " + err.message;
      });
    });
    // Down arrow from the search box to the results, and up and down among them.
    picker.addEventListener("keydown", function (event) {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      const buttons = Array.from(results.querySelectorAll("button"));
      const at = buttons.indexOf(document.activeElement);
      if (document.activeElement === search && event.key === "ArrowDown" && buttons.length) {
        buttons[0].focus();
      } else if (at >= 0) {
        (at === 0 && event.key === "ArrowUp" ? search
          : buttons[Math.min(buttons.length - 1, at + (event.key === "ArrowDown" ? 1 : -1))]).focus();
      } else {
        return;
      }
      event.preventDefault();
    });

    picker.append(title, choices, label, search, count, results);
    return picker;
  }

  // `saved` is the feedback given before a reload ({body, thanks}), shown as it was left.
  function feedbackBar(answer, saved) {
    const bar = el("div", "feedback");
    if (answer.query_id === null) {
      bar.appendChild(el("p", "feedback-off", "Feedback isn't recorded for this answer (question logging is off)."));
      return bar;
    }
    const row = el("div", "feedback-row");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Was this answer right?");
    const label = el("span", "feedback-label", answer.matched ? "Was this right?" : "Did a suggestion fit?");
    const up = thumbButton("up", "Right", "Yes, this was right");
    const down = thumbButton("down", "Wrong", "No, this was wrong");
    const status = el("span", "feedback-status");
    status.setAttribute("role", "status");
    row.append(label, up, down, status);
    bar.appendChild(row);

    // One at a time, in order: a 👎 and the pick right after it must not race, or the server
    // could store the bare 👎 last and lose the pick.
    let sending = Promise.resolve();
    function send(body, thanks) {
      status.textContent = "Saving…";
      status.classList.remove("feedback-status--error");
      const payload = Object.assign({ query_id: answer.query_id, feedback_token: answer.feedback_token }, body);
      sending = sending.then(function () {
        return requestJSON("POST", "/api/feedback", payload);
      }).then(function () {
        status.textContent = thanks;
        chatHistory.setFeedback(answer.query_id, { body: body, thanks: thanks });
      }, function (err) {
        status.textContent = "Not saved: " + err.message;
        status.classList.add("feedback-status--error");
      });
      return sending;
    }

    function press(button) {
      [up, down].forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
    }

    const picker = entryPicker(answer, function (button, entryId, question) {
      picker.querySelectorAll(".choice").forEach(function (c) {
        c.setAttribute("aria-pressed", String(c === button));
      });
      const body = entryId ? { rating: "down", picked_entry_id: entryId }
                           : { rating: "down", none_of_these: true };
      send(body, entryId ? "Noted: the right entry is “" + question + "”." : "Noted: none of these fit.");
    });
    bar.appendChild(picker);

    up.addEventListener("click", function () {
      press(up);
      picker.hidden = true;
      send({ rating: "up" }, "Thanks, noted.");
    });

    down.addEventListener("click", function () {
      press(down);
      picker.hidden = false;
      keepClearOfComposer(picker);
      // Again once the thanks is shown: on a narrow screen it wraps and pushes the picker down.
      send({ rating: "down" }, "Thanks. Pick the right entry below if you know it.")
        .then(function () { keepClearOfComposer(picker); });
    });

    if (saved && saved.body) {
      press(saved.body.rating === "up" ? up : down);
      picker.hidden = saved.body.rating === "up";
      status.textContent = saved.thanks;
      picker.querySelectorAll(".choice").forEach(function (c) {
        const chosen = saved.body.none_of_these ? c.classList.contains("choice--none")
          : Boolean(saved.body.picked_entry_id) && c.dataset.entryId === saved.body.picked_entry_id;
        c.setAttribute("aria-pressed", String(chosen));
      });
    }
    return bar;
  }

  // ------------------------------------------------------------ cards

  function answerCard(answer, saved) {
    if (!answer.matched) return noMatchCard(answer, saved);
    const card = el("article", "card card--answer");
    card.setAttribute("aria-label", "Answer");
    card.appendChild(cardTop("Policy", confidenceBadge(answer.confidence, answer.band)));
    card.append(...P.entryBody(answer));
    card.appendChild(sourceBlock("Matched: " + answer.source_question, answer.tags));
    if (answer.applies_when.length) card.appendChild(P.appliesWhen(answer.applies_when));
    if (answer.ruled_out.length) card.appendChild(ruledOutBlock(answer.ruled_out));
    if (answer.ambiguous && answer.alternatives.length) {
      const other = answer.alternatives[0];
      const hint = el("div", "ambiguous");
      hint.setAttribute("role", "note");
      hint.appendChild(el("p", "ambiguous-text",
        "Ambiguous: two entries fit almost equally well. Check the other candidate before sending:"));
      hint.appendChild(alternativeButton(other));
      card.appendChild(hint);
      if (answer.alternatives.length > 1) {
        card.appendChild(alternativesList(answer.alternatives.slice(1), "Also close"));
      }
    } else if (answer.alternatives.length) {
      card.appendChild(alternativesList(answer.alternatives, "Also close"));
    }
    card.appendChild(feedbackBar(answer, saved));
    return card;
  }

  function noMatchCard(answer, saved) {
    const card = el("article", "card card--nomatch");
    card.setAttribute("aria-label", "No confident match");
    card.appendChild(el("h2", "nomatch-title", "No confident match"));
    card.appendChild(el("p", "nomatch-text",
      "The playbook has no entry that clearly answers this, so there is no answer to send. " +
      "Check with a lead, or open one of the closest entries if it really fits."));
    if (answer.ambiguous && !answer.out_of_scope) {  // app.records.Answer.needs_detail
      card.appendChild(el("p", "nomatch-text nomatch-needs-detail", NEEDS_DETAIL));
    }
    if (answer.ruled_out.length) card.appendChild(ruledOutBlock(answer.ruled_out));
    if (answer.out_of_scope) {
      card.appendChild(el("p", "nomatch-text nomatch-out-of-scope", "Not in the playbook: it is nearest to “" +
        answer.out_of_scope + "”, a question the playbook marks as one it does not answer."));
    }
    if (answer.alternatives.length) {
      card.appendChild(alternativesList(answer.alternatives, "Closest entries"));
    }
    card.appendChild(feedbackBar(answer, saved));
    return card;
  }

  function entryCard(entry, alt) {
    const card = el("article", "card card--entry");
    card.setAttribute("aria-label", "Entry");
    card.appendChild(cardTop("Entry you opened", alt ? confidenceBadge(alt.confidence, alt.band) : null));
    card.append(...P.entryBody(entry));
    card.appendChild(sourceBlock("Entry: " + entry.question, entry.tags));
    if (entry.applies_when && entry.applies_when.length) card.appendChild(P.appliesWhen(entry.applies_when));
    return card;
  }

  function errorCard(message) {
    const card = el("article", "card card--error");
    card.setAttribute("role", "alert");
    card.append(el("h2", "error-title", "Couldn't get an answer"), el("p", "error-text", message));
    return card;
  }

  // ------------------------------------------------------------ actions

  function announceAnswer(answer) {
    if (!answer.matched) {
      const reason = answer.ruled_out.length
        ? " The closest card does not apply: it " + answer.ruled_out[0].reason + "."
        : answer.out_of_scope ? " The playbook marks this question as one it does not answer."
        : answer.ambiguous ? " " + NEEDS_DETAIL : "";
      announce("No confident match." + reason + " " + answer.alternatives.length +
               " closest entries suggested.");
      return;
    }
    let text = "Answer, " + percent(answer.confidence) + " " + BAND_WORDS[answer.band] + ": " + answer.answer + ".";
    if (answer.macro) text += " Macro: " + answer.macro + ".";
    announce(text);
  }

  // A refused question goes back into the composer, so a long paste is never lost.
  async function ask(question, fromComposer) {
    addTurn("user", el("p", "bubble", question));
    const pending = addTurn("bot", el("p", "pending", "Looking it up…"));
    sendButton.disabled = true;
    try {
      const answer = await requestJSON("POST", "/api/chat/ask", { question: question });
      pending.replaceChildren(answerCard(answer, null));
      chatHistory.append([{ type: "question", text: question }, { type: "answer", answer: answer, feedback: null }]);
      announceAnswer(answer);
    } catch (err) {
      pending.replaceChildren(errorCard(err.message));
      announce("Error: " + err.message);
      if (fromComposer && err.status === 422 && !input.value) {
        input.value = question;
        fitComposer();
      }
    } finally {
      sendButton.disabled = false;
      markShortcutTarget();
      reveal(pending);
      input.focus();
    }
  }

  async function openEntry(alt) {
    try {
      const entry = await requestJSON("GET", "/api/entries/" + encodeURIComponent(alt.entry_id));
      const shown = { confidence: alt.confidence, band: alt.band };
      addTurn("bot", entryCard(entry, shown));
      chatHistory.append([{ type: "entry", entry: entry, alt: shown }]);
      announce("Entry: " + entry.question + ". " + entry.answer);
    } catch (err) {
      addTurn("bot", errorCard(err.message));
      announce("Error: " + err.message);
    }
  }

  // Draw the kept conversation again, from the answers as they were (not asked again).
  function restore() {
    chatHistory.read().forEach(function (record) {
      try {
        if (record.type === "question") addTurn("user", el("p", "bubble", record.text), true);
        else if (record.type === "answer") addTurn("bot", answerCard(record.answer, record.feedback), true);
        else if (record.type === "entry") addTurn("bot", entryCard(record.entry, record.alt), true);
      } catch (err) {
        // A record this version can't draw is skipped, not fatal.
      }
    });
    if (conversation.lastElementChild) conversation.lastElementChild.scrollIntoView({ block: "end" });
  }

  clearButton.addEventListener("click", function () {
    chatHistory.clear();
    conversation.replaceChildren();
    showConversation(false);
    input.focus();
    announce("History cleared.");
  });

  // Alt+C (Option+C on a Mac) is bound by no browser: Chrome and Edge keep Alt with F, E, D, Home
  // and the arrows, Firefox Alt with its menus' letters (F, E, V, S, B, T, H), and Ctrl+Shift+C /
  // Ctrl+Shift+K open developer tools. AltGr (Ctrl+Alt) is left alone for the letters it types;
  // on a Mac, Option+C's "ç" is given up. In the playbook browser it copies the card opened there.
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey || event.code !== "KeyC") return;
    event.preventDefault();
    const scope = browserDialog.open ? browserDialog : conversation;
    const button = scope.querySelector(".copy[aria-keyshortcuts]");
    if (button) button.click();
    else announce(browserDialog.open ? "Nothing to copy: open a card first."
      : "Nothing to copy: the latest answer has no macro or answer.");
  });

  // The composer grows with a pasted message (up to a third of the screen, then scrolls).
  function fitComposer() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, window.innerHeight / 3) + "px";
  }
  input.addEventListener("input", fitComposer);
  window.addEventListener("resize", fitComposer);  // a placeholder that wraps is shown whole
  fitComposer();
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Keyboard focus scrolls a control clear of the sticky composer (scroll-padding-bottom).
  new ResizeObserver(function () {
    document.documentElement.style.setProperty("--composer-height", composer.offsetHeight + "px");
  }).observe(composer);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) {
      input.focus();
      return;
    }
    input.value = "";
    fitComposer();
    ask(question, true);
  });

  document.querySelectorAll(".example").forEach(function (button) {
    button.addEventListener("click", function () {
      ask(button.dataset.question);
    });
  });

  restore();
})();
