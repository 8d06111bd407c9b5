// The conversation: one view per turn (a question and its answer, or a search and its passages).
// Citation chips are built from the final answer's verified citations only, never from markers
// the model wrote. Every text from the server goes in as text (textContent), never as HTML.

import { t } from "./i18n.js";
import { answerMarkdown } from "./text.js";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function button(className, text, onClick) {
  const node = element("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

const charsLabel = (start, end) => t("chars", { start, end });

// One question and its answer. `actions`: openPassage(docId, passages, focusStart),
// showCard(chip, citation), hideCard(), announce(text).
export class AskTurnView {
  constructor(turn, actions) {
    this.turn = turn;
    this.actions = actions;
    this.root = element("article", "turn");
    const asked = element("p", "asked");
    asked.append(element("span", "who", `${t("you")}: `), element("span", "question-text", turn.question));
    this.understood = element("p", "understood muted small");
    this.understood.hidden = true;
    this.stage = element("p", "stage muted small");
    this.body = element("div", "answer");
    this.body.lang = "de";
    this.root.append(asked, this.understood, this.stage, this.body);
    if (turn.searched) this.setUnderstood(turn.searched);
  }

  setStage(key) {
    this.stage.textContent = key ? t(key) : "";
    this.stage.hidden = !key;
  }

  setUnderstood(question) {
    if (!question || question === this.turn.question) return;
    this.understood.textContent = t("understoodAs", { question });
    this.understood.hidden = false;
  }

  appendDraft(piece) {
    if (!this.draft) {
      this.draft = element("p", "draft");
      this.body.replaceChildren(this.draft);
    }
    this.draft.append(piece);
  }

  showFailure(message) {
    this.setStage(null);
    this.body.replaceChildren(element("p", "warning", message));
  }

  showStopped() {
    this.setStage(null);
    this.body.replaceChildren(element("p", "muted", t("stopped")));
  }

  // The checked answer replaces the draft; chips, sources and the copy button follow.
  showAnswer(answer, retrieved) {
    this.setStage(null);
    this.body.lang = answer.language || "de";
    const text = element("p", "answer-text", answer.answer);
    this.body.replaceChildren(text);
    this.root.classList.toggle("withdrawn", Boolean(answer.abstained));
    if (answer.abstained) {
      this.body.append(element("p", "refusal", t("refusal")));
      if (answer.withdrawal) this.body.append(element("p", "muted small", answer.withdrawal));
      this.body.append(element("p", "muted small", t("searched", { question: answer.question })));
    } else {
      this.body.append(this.chips(answer));
      if (answer.as_of) this.body.append(element("p", "muted small as-of", t("asOf", { date: answer.as_of })));
    }
    this.root.append(this.sources(answer, retrieved || []), this.tools(answer));
  }

  chips(answer) {
    const list = element("div", "chips");
    list.setAttribute("role", "group");
    list.setAttribute("aria-label", t("sources"));
    for (const citation of answer.citations.filter((c) => c.verified)) {
      const label = `[${citation.number}] ${articleName(citation)} · ${citation.date || t("undated")}`;
      const chip = button("chip", label, () => this.openCitation(answer, citation));
      chip.dataset.docId = citation.doc_id;
      chip.dataset.start = String(citation.start);
      chip.dataset.end = String(citation.end);
      chip.dataset.number = String(citation.number);
      chip.setAttribute("aria-label", t("citationLabel", { number: citation.number, doc: articleName(citation),
        date: `, ${citation.date || t("undated")}` }));
      chip.setAttribute("aria-describedby", "card");
      for (const name of ["mouseenter", "focus"]) chip.addEventListener(name, () => this.actions.showCard(chip, citation));
      for (const name of ["mouseleave", "blur"]) chip.addEventListener(name, () => this.actions.hideCard());
      list.append(chip);
    }
    return list;
  }

  // Every verified quote of this answer from the same article is marked; this one in view.
  openCitation(answer, citation) {
    const passages = answer.citations.filter((c) => c.verified && c.doc_id === citation.doc_id)
      .map((c) => ({ number: c.number, start: c.start, end: c.end, quote: c.quote, sourceLink: c.source_link }));
    this.actions.openPassage(citation.doc_id, passages, citation.start);
  }

  sources(answer, retrieved) {
    const box = element("details", "sources");
    box.append(element("summary", null, t("sources")));
    const citedChunks = new Set(answer.citations.filter((c) => c.verified).map((c) => c.chunk_id));
    const cited = answer.citations.filter((c) => c.verified);
    if (cited.length) {
      box.append(element("h3", null, t("cited")));
      const list = element("ul", "source-list");
      for (const c of cited) {
        const item = element("li");
        item.append(element("span", "source-head", `[${c.number}] ${articleName(c)} · ${c.date || t("undated")} · ${charsLabel(c.start, c.end)}`));
        const quote = element("blockquote", "quote", c.quote);
        quote.lang = "de";
        item.append(quote);
        list.append(item);
      }
      box.append(list);
    }
    const others = retrieved.filter((r) => !citedChunks.has(r.chunk_id));
    if (others.length) {
      box.append(element("h3", null, t("retrievedNotCited")));
      box.append(passageList(others, this.actions));
    }
    const toggle = element("label", "toggle small");
    const check = element("input");
    check.type = "checkbox";
    const note = element("p", "muted small scores-note", t("scoresNote"));
    note.hidden = true;
    check.addEventListener("change", () => {
      box.classList.toggle("show-scores", check.checked);
      note.hidden = !check.checked;
    });
    toggle.append(check, ` ${t("showScores")}`);
    box.append(toggle, note);
    return box;
  }

  tools(answer) {
    const bar = element("div", "turn-tools");
    const status = element("span", "muted small");
    status.setAttribute("role", "status");
    bar.append(button("copy", t("copyMarkdown"), async () => {
      const markdown = answerMarkdown(this.turn.question, answer, charsLabel);
      status.textContent = (await copyText(markdown)) ? t("copied") : t("copyFailed");
    }), status);
    return bar;
  }
}

// Passages (search results, or retrieved chunks): article, characters, score behind the toggle,
// the text, and a button that opens the article there.
export function passageList(passages, actions) {
  const list = element("ul", "source-list");
  for (const p of passages) {
    const item = element("li");
    const head = element("span", "source-head", `${p.doc_id} · ${charsLabel(p.start, p.end)}`);
    const score = element("span", "score muted", ` · ${t("score", { score: Number(p.score).toFixed(4) })}`);
    head.append(score);
    const text = element("p", "passage-text", p.text);
    text.lang = "de";
    const open = button("open", t("open"), () => actions.openPassage(p.doc_id, [
      { number: null, start: p.start, end: p.end, quote: p.text }], p.start));
    item.append(head, text, open);
    list.append(item);
  }
  return list;
}

export function searchTurnView(turn, actions) {
  const root = element("article", "turn search-turn show-scores");
  const results = turn.results || [];
  root.append(element("p", "asked", t(results.length ? "passages" : "noPassages",
    { count: results.length, query: turn.query })));
  if (turn.error) root.append(element("p", "warning", t("failed", { message: turn.error })));
  if (results.length) root.append(passageList(results, actions));
  return root;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = element("textarea", "visually-hidden", text);
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

// How a citation names its article: title and site where it came from the web, else its id.
export function articleName(citation) {
  return citation.title ? [citation.title, citation.site].filter(Boolean).join(" · ") : citation.doc_id;
}
