// The reader pane: an article from /v1/documents/{id}, its quoted passages marked where the
// server says they stand. Each quote is checked here too: text.slice(start, end) must equal the
// quote, or a warning says so and nothing is marked for it. Text goes in as text, never as HTML.

import { getJSON } from "./api.js";
import { t } from "./i18n.js";
import { codePointIndex, mergeSpans, utf16Range } from "./text.js";

export class Reader {
  constructor(onClose) {
    this.pane = document.getElementById("reader");
    this.title = document.getElementById("reader-title");
    this.meta = document.getElementById("reader-meta");
    this.warning = document.getElementById("reader-warning");
    this.text = document.getElementById("reader-text");
    this.position = document.getElementById("mark-position");
    this.link = document.getElementById("reader-link");
    this.original = document.getElementById("reader-original");
    this.source = document.getElementById("reader-source");
    this.marks = [];
    this.current = -1;
    this.onClose = onClose;
    document.getElementById("reader-close").addEventListener("click", () => this.close());
    document.getElementById("mark-next").addEventListener("click", () => this.step(1));
    document.getElementById("mark-prev").addEventListener("click", () => this.step(-1));
  }

  get isOpen() {
    return !this.pane.hidden;
  }

  // Open `docId` with `passages` marked ({number, start, end, quote}; quote null: a bare passage
  // from a link) and the one starting at `focusStart` in view.
  async open(docId, passages, focusStart) {
    const ticket = (this.opening = (this.opening || 0) + 1);  // a later open wins over an earlier one still loading
    this.pane.hidden = false;
    document.body.classList.add("reading");
    this.title.textContent = docId;
    this.meta.textContent = "";
    this.original.hidden = true;
    this.passages = passages;
    this.text.textContent = "";
    this.showWarnings([]);
    let doc;
    try {
      doc = await getJSON(`/v1/documents/${encodeURIComponent(docId)}`);
      if (ticket !== this.opening) return;
    } catch (error) {
      if (ticket !== this.opening) return;
      this.showWarnings([error.status === 404 ? t("articleGone", { doc: docId }) : error.message]);
      this.setMarks([]);
      return;
    }
    // An article from the web: its title, site and date, and a link to the publisher's page.
    this.title.textContent = doc.title || docId;
    this.meta.textContent = [doc.site, doc.date, t("chars", { start: 0, end: [...doc.text].length })]
      .filter(Boolean).join(" · ");
    if (isWebAddress(doc.url)) {
      this.original.href = doc.url;
      this.original.hidden = false;
    }
    const { spans, warnings } = checkedSpans(doc.text, passages);
    this.render(doc.text, mergeSpans(spans));
    this.showWarnings(warnings);
    const focus = this.marks.findIndex((mark) => Number(mark.dataset.start) <= focusStart
      && focusStart < Number(mark.dataset.end));
    this.go(focus >= 0 ? focus : 0, docId);
  }

  render(text, spans) {
    const fragment = document.createDocumentFragment();
    let at = 0;
    for (const span of spans) {
      fragment.append(text.slice(at, span.from));
      const mark = document.createElement("mark");
      mark.dataset.start = String(Math.min(...span.members.map((m) => m.start)));
      mark.dataset.end = String(Math.max(...span.members.map((m) => m.end)));
      mark.dataset.numbers = span.members.map((m) => m.number).filter(Boolean).join(",");
      mark.tabIndex = -1;
      mark.textContent = text.slice(span.from, span.to);
      fragment.append(mark);
      at = span.to;
    }
    fragment.append(text.slice(at));
    this.text.replaceChildren(fragment);
    this.setMarks([...this.text.querySelectorAll("mark")]);
  }

  setMarks(marks) {
    this.marks = marks;
    this.current = -1;
    this.position.textContent = marks.length ? "" : t("noMarks");
    this.link.hidden = !marks.length;
    this.source.hidden = true;
  }

  showWarnings(messages) {
    this.warning.hidden = !messages.length;
    this.warning.replaceChildren(...messages.map((message) => {
      const line = document.createElement("p");
      line.textContent = message;
      return line;
    }));
  }

  step(direction) {
    if (!this.marks.length) return;
    this.go((this.current + direction + this.marks.length) % this.marks.length, this.docId);
  }

  go(i, docId) {
    if (!this.marks.length) return;
    this.docId = docId;
    this.marks.forEach((mark, j) => mark.classList.toggle("current", j === i));
    this.current = i;
    const mark = this.marks[i];
    this.position.textContent = t("markPosition", { index: i + 1, count: this.marks.length });
    this.link.href = `#doc=${encodeURIComponent(docId)}&chars=${mark.dataset.start}-${mark.dataset.end}`;
    // The same quote on the publisher's page (a text fragment), where the citation has one.
    const passage = (this.passages || []).find((p) => String(p.start) === mark.dataset.start && isWebAddress(p.sourceLink));
    this.source.hidden = !passage;
    if (passage) this.source.href = passage.sourceLink;
    // Beside the conversation the pane scrolls by itself: move it, not the page. Stacked on a
    // phone it does not, and the page moves to the passage.
    if (this.pane.scrollHeight > this.pane.clientHeight + 1 && getComputedStyle(this.pane).position === "sticky") {
      const top = mark.getBoundingClientRect().top - this.pane.getBoundingClientRect().top + this.pane.scrollTop;
      this.pane.scrollTop = Math.max(0, top - this.pane.clientHeight / 2);
    } else {
      mark.scrollIntoView({ block: "center" });
    }
    mark.focus({ preventScroll: true });
  }

  close() {
    if (!this.isOpen) return;
    this.pane.hidden = true;
    document.body.classList.remove("reading");
    this.onClose();
  }
}

// The passages that stand where they say (UTF-16 spans to mark) and a warning for each that
// does not: outside the text, or other characters there than the quote.
export function checkedSpans(text, passages) {
  const index = codePointIndex(text);
  const spans = [];
  const warnings = [];
  for (const passage of passages) {
    const range = utf16Range(index, passage.start, passage.end);
    const found = range ? text.slice(range[0], range[1]) : "";
    if (!range || (passage.quote != null && found !== passage.quote)) {
      warnings.push(t("mismatch", { number: passage.number ?? "?", start: passage.start, end: passage.end,
        found: shorten(found), quote: shorten(passage.quote ?? "") }));
      continue;
    }
    spans.push({ from: range[0], to: range[1], start: passage.start, end: passage.end, number: passage.number });
  }
  return { spans, warnings };
}

function shorten(text) {
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

// Only http(s) addresses become links: a stored url is the publisher's, never a script.
function isWebAddress(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url);
}
