// The chat page: ask, render answer cards, copy macros, open alternatives, send feedback.
"use strict";

(function () {
  const { el, requestJSON, percent } = window.Playbook;
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const sendButton = document.getElementById("send");
  const conversation = document.getElementById("conversation");
  const announcer = document.getElementById("announcer");
  const welcome = document.getElementById("welcome");
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const BAND_WORDS = { high: "high confidence", medium: "medium confidence", low: "low confidence" };

  function announce(text) {
    announcer.textContent = "";
    // A fresh text node after a tick makes screen readers announce even a repeated message.
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  // Show the newest turn; a card taller than the screen is shown from its top, where the
  // answer and the macro are.
  function reveal(node) {
    const room = window.innerHeight - 160;
    const block = node.getBoundingClientRect().height > room ? "start" : "end";
    node.scrollIntoView({ block: block, behavior: reducedMotion.matches ? "auto" : "smooth" });
  }

  function addTurn(kind, child) {
    if (welcome) welcome.hidden = true;
    const item = el("li", "turn turn--" + kind);
    item.appendChild(child);
    conversation.appendChild(item);
    reveal(item);
    return item;
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

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }

  function legacyCopy(text) {
    return new Promise(function (resolve, reject) {
      const area = el("textarea", "offscreen");
      area.value = text;
      area.setAttribute("readonly", "");
      document.body.appendChild(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      if (ok) resolve(); else reject(new Error("copy failed"));
    });
  }

  function macroBlock(macro) {
    const block = el("div", "macro");
    const head = el("div", "macro-head");
    const label = el("span", "kicker", "Macro");
    const button = el("button", "copy", "Copy");
    button.type = "button";
    button.setAttribute("aria-label", "Copy macro");
    const code = el("code", "macro-text", macro);
    button.addEventListener("click", function () {
      copyText(macro).then(function () {
        button.textContent = "Copied";
        button.classList.add("copied");
        announce("Macro copied");
        window.setTimeout(function () {
          button.textContent = "Copy";
          button.classList.remove("copied");
        }, 2500);
      }, function () {
        button.textContent = "Select and copy";
      });
    });
    head.append(label, button);
    block.append(head, code);
    return block;
  }

  function tagChips(tags) {
    const list = el("ul", "chips");
    list.setAttribute("aria-label", "Tags");
    tags.forEach(function (tag) { list.appendChild(el("li", "chip", tag)); });
    return list;
  }

  function alternativeButton(alt) {
    const button = el("button", "alt");
    button.type = "button";
    button.append(el("span", "alt-question", alt.source_question),
                  el("span", "alt-confidence alt-confidence--" + alt.band, percent(alt.confidence)));
    button.addEventListener("click", function () { openEntry(alt); });
    return button;
  }

  function alternativesList(alternatives, title) {
    const section = el("section", "alternatives");
    section.appendChild(el("h3", "kicker", title));
    const list = el("ul", "alt-list");
    alternatives.forEach(function (alt) {
      const item = el("li");
      item.appendChild(alternativeButton(alt));
      list.appendChild(item);
    });
    section.appendChild(list);
    return section;
  }

  function cardTop(kicker, badge) {
    const top = el("div", "card-top");
    top.appendChild(el("span", "kicker", kicker));
    if (badge) top.appendChild(badge);
    return top;
  }

  function sourceBlock(text, tags) {
    const source = el("div", "source");
    source.appendChild(el("p", "matched", text));
    if (tags.length) source.appendChild(tagChips(tags));
    return source;
  }

  // "Applies when: vendor is Best Buy": the card's conditions, so the agent can check them.
  function appliesWhen(conditions) {
    const note = el("p", "applies-when", "Applies when: " + conditions.join("; "));
    return note;
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

  // An answer that is just the macro ("#SD - Too Late to Cancel") is shown once, as the macro.
  function entryBody(card, entry) {
    if (entry.answer !== entry.macro) card.appendChild(el("p", "policy", entry.answer));
    if (entry.macro) card.appendChild(macroBlock(entry.macro));
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

  function feedbackBar(answer) {
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

    const picker = el("div", "picker");
    picker.hidden = true;
    picker.appendChild(el("p", "picker-title", "Which entry was right?"));
    const choices = el("div", "picker-choices");
    picker.appendChild(choices);
    bar.appendChild(picker);

    function send(body, thanks) {
      status.textContent = "Saving…";
      return requestJSON("POST", "/api/feedback", Object.assign({ query_id: answer.query_id, feedback_token: answer.feedback_token }, body))
        .then(function () { status.textContent = thanks; })
        .catch(function (err) {
          status.textContent = "Not saved: " + err.message;
          status.classList.add("feedback-status--error");
        });
    }

    function press(button) {
      [up, down].forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
    }

    up.addEventListener("click", function () {
      press(up);
      picker.hidden = true;
      send({ rating: "up" }, "Thanks, noted.");
    });

    down.addEventListener("click", function () {
      press(down);
      picker.hidden = false;
      send({ rating: "down" }, "Thanks. Pick the right entry below if you know it.");
    });

    const options = answer.alternatives.map(function (alt) {
      return { id: alt.entry_id, text: alt.source_question };
    });
    options.push({ id: null, text: "None of these" });
    options.forEach(function (option) {
      const choice = el("button", option.id ? "choice" : "choice choice--none", option.text);
      choice.type = "button";
      choice.setAttribute("aria-pressed", "false");
      choice.addEventListener("click", function () {
        choices.querySelectorAll(".choice").forEach(function (c) {
          c.setAttribute("aria-pressed", String(c === choice));
        });
        const body = option.id ? { rating: "down", picked_entry_id: option.id }
                               : { rating: "down", none_of_these: true };
        const thanks = option.id ? "Noted: the right entry is “" + option.text + "”." : "Noted: none of these fit.";
        send(body, thanks);
      });
      choices.appendChild(choice);
    });
    return bar;
  }

  // ------------------------------------------------------------ cards

  function answerCard(answer) {
    if (!answer.matched) return noMatchCard(answer);
    const card = el("article", "card card--answer");
    card.setAttribute("aria-label", "Answer");
    card.appendChild(cardTop("Policy", confidenceBadge(answer.confidence, answer.band)));
    entryBody(card, answer);
    card.appendChild(sourceBlock("Matched: " + answer.source_question, answer.tags));
    if (answer.applies_when.length) card.appendChild(appliesWhen(answer.applies_when));
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
    card.appendChild(feedbackBar(answer));
    return card;
  }

  function noMatchCard(answer) {
    const card = el("article", "card card--nomatch");
    card.setAttribute("aria-label", "No confident match");
    card.appendChild(el("h2", "nomatch-title", "No confident match"));
    card.appendChild(el("p", "nomatch-text",
      "The playbook has no entry that clearly answers this, so there is no answer to send. " +
      "Check with a lead, or open one of the closest entries if it really fits."));
    if (answer.ruled_out.length) card.appendChild(ruledOutBlock(answer.ruled_out));
    if (answer.alternatives.length) {
      card.appendChild(alternativesList(answer.alternatives, "Closest entries"));
    }
    card.appendChild(feedbackBar(answer));
    return card;
  }

  function entryCard(entry, alt) {
    const card = el("article", "card card--entry");
    card.setAttribute("aria-label", "Entry");
    card.appendChild(cardTop("Entry you opened", alt ? confidenceBadge(alt.confidence, alt.band) : null));
    entryBody(card, entry);
    card.appendChild(sourceBlock("Entry: " + entry.question, entry.tags));
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
        ? " The closest card does not apply: it " + answer.ruled_out[0].reason + "." : "";
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
    const bubble = el("p", "bubble", question);
    addTurn("user", bubble);
    const pending = addTurn("bot", el("p", "pending", "Looking it up…"));
    sendButton.disabled = true;
    try {
      const answer = await requestJSON("POST", "/api/chat/ask", { question: question });
      pending.replaceChildren(answerCard(answer));
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
      reveal(pending);
      input.focus();
    }
  }

  // The composer grows with a pasted message (up to a third of the screen, then scrolls).
  function fitComposer() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, window.innerHeight / 3) + "px";
  }
  input.addEventListener("input", fitComposer);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  async function openEntry(alt) {
    try {
      const entry = await requestJSON("GET", "/api/entries/" + encodeURIComponent(alt.entry_id));
      addTurn("bot", entryCard(entry, alt));
      announce("Entry: " + entry.question + ". " + entry.answer);
    } catch (err) {
      addTurn("bot", errorCard(err.message));
      announce("Error: " + err.message);
    }
  }

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
})();
