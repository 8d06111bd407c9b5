// The page's wiring: the form, the two modes, the conversation kept in this tab, the keys, the
// key dialog, the index status and links to a passage (#doc=ID&chars=s-e).

import { getJSON, postJSON, setKey, streamAsk } from "./api.js";
import { AskTurnView, articleName, searchTurnView } from "./conversation.js";
import { t, translatePage } from "./i18n.js";
import { Reader } from "./reader.js";

const STORE = "rag.conversation";
const $ = (id) => document.getElementById(id);
const page = {
  conversation: $("conversation"), empty: $("empty"), form: $("ask-form"), question: $("question"),
  label: $("question-label"), send: $("send"), stop: $("stop"), card: $("card"), announcer: $("announcer"),
  status: $("index-status"), dialog: $("key-dialog"), since: $("since"), until: $("until"),
};
const state = { mode: "ask", turns: loadTurns(), controller: null, opener: null };
const reader = new Reader(() => state.opener?.focus());
const actions = { openPassage, showCard, hideCard };

function loadTurns() {
  try {
    const turns = JSON.parse(sessionStorage.getItem(STORE) || "[]");
    return Array.isArray(turns) ? turns : [];
  } catch {
    return [];
  }
}

function saveTurns() {
  sessionStorage.setItem(STORE, JSON.stringify(state.turns));
}

function show(turn) {
  page.empty.hidden = true;
  if (turn.kind === "search") {
    page.conversation.append(searchTurnView(turn, actions));
    return;
  }
  const view = new AskTurnView(turn, actions);
  page.conversation.append(view.root);
  if (turn.answer) view.showAnswer(turn.answer, turn.retrieved);
  else if (turn.stopped) view.showStopped();
  else if (turn.error) view.showFailure(t("failed", { message: turn.error }));
}

function busy(on) {
  page.conversation.setAttribute("aria-busy", String(on));
  page.send.disabled = on;
  page.stop.hidden = !on;
}

// A follow-up is sent with the turns before it; the server makes it standalone, as `rag chat` does.
function history() {
  return state.turns.filter((turn) => turn.kind === "ask" && turn.answer)
    .map((turn) => ({ question: turn.question, answer: turn.answer.answer })).slice(-10);
}

async function ask(question) {
  const turn = { kind: "ask", question, searched: null, answer: null, retrieved: [], error: null, stopped: false };
  const view = new AskTurnView(turn, actions);
  page.empty.hidden = true;
  page.conversation.append(view.root);
  view.setStage("searching");
  busy(true);
  state.controller = new AbortController();
  const handlers = {
    rewrite: (data) => { turn.searched = data.searched; view.setUnderstood(data.searched); },
    retrieval: (data) => { turn.retrieved = data.retrieved; view.setStage("reading"); },
    token: (data) => { view.setStage("writing"); view.appendDraft(data.delta); },
    stage: (data) => view.setStage(data.stage),
    answer: (data) => { turn.answer = data; view.showAnswer(data, turn.retrieved); },
    error: (data) => { turn.error = data.error?.message || "error"; },
  };
  try {
    // The date range, when set, replaces a period the question names (the API's since and until).
    const period = { since: page.since.value || undefined, until: page.until.value || undefined };
    await streamAsk({ question, history: history(), ...period }, (name, data) => handlers[name]?.(data),
      state.controller.signal);
    if (!turn.answer && !turn.error) turn.error = "the answer stream ended early";
  } catch (error) {
    if (error.name === "AbortError") turn.stopped = true;
    else turn.error = error.message;
    if (error.status === 401) askForKey();
  } finally {
    state.controller = null;
    busy(false);
  }
  if (turn.stopped) view.showStopped();
  else if (turn.error) view.showFailure(t("failed", { message: turn.error }));
  state.turns.push(turn);
  saveTurns();
  page.announcer.textContent = turn.answer ? t("answerAnnounced", {
    answer: [turn.answer.answer, turn.answer.withdrawal].filter(Boolean).join(" ") }) : view.body.textContent;
}

async function search(query) {
  const turn = { kind: "search", query, results: [], error: null };
  busy(true);
  try {
    turn.results = (await postJSON("/v1/search", { query, k: 8 })).results;
  } catch (error) {
    turn.error = error.message;
    if (error.status === 401) askForKey();
  } finally {
    busy(false);
  }
  state.turns.push(turn);
  saveTurns();
  show(turn);
  page.announcer.textContent = t(turn.results.length ? "passages" : "noPassages", { count: turn.results.length, query });
}

// The article, with every verified quote of the conversation from it marked (a link's bare
// passage alone); the passage starting at focusStart in view.
function openPassage(docId, passages, focusStart) {
  state.opener = document.activeElement;
  hideCard();
  const seen = new Set();
  const quoted = passages.some((p) => p.number != null);
  const all = quoted ? passages.concat(state.turns.flatMap((turn) => (turn.answer?.citations || [])
    .filter((c) => c.verified && c.doc_id === docId)
    .map((c) => ({ number: c.number, start: c.start, end: c.end, quote: c.quote })))) : passages;
  const unique = all.filter((p) => !seen.has(`${p.start}-${p.end}`) && seen.add(`${p.start}-${p.end}`));
  reader.open(docId, unique, focusStart);
}

function showCard(chip, citation) {
  const quote = document.createElement("blockquote");
  quote.lang = "de";
  quote.textContent = `„${citation.quote}“`;
  const where = document.createElement("p");
  where.className = "small";
  where.textContent = `${articleName(citation)} · ${citation.date || t("undated")} · ${t("verifiedAt", { start: citation.start, end: citation.end })}`;
  page.card.replaceChildren(quote, where);
  page.card.hidden = false;
  const box = chip.getBoundingClientRect();
  const width = Math.min(420, window.innerWidth - 16);
  page.card.style.width = `${width}px`;
  page.card.style.left = `${Math.max(8, Math.min(box.left, window.innerWidth - width - 8)) + window.scrollX}px`;
  page.card.style.top = `${box.bottom + window.scrollY + 6}px`;
}

function hideCard() {
  page.card.hidden = true;
}

function setMode(mode) {
  state.mode = mode;
  $("mode-ask").setAttribute("aria-pressed", String(mode === "ask"));
  $("mode-search").setAttribute("aria-pressed", String(mode === "search"));
  page.label.textContent = t(mode === "ask" ? "question" : "searchQuery");
  page.send.textContent = t(mode === "ask" ? "send" : "sendSearch");
  page.question.focus();
}

function newConversation() {
  state.controller?.abort();
  state.turns = [];
  saveTurns();
  page.conversation.querySelectorAll(".turn").forEach((turn) => turn.remove());
  page.empty.hidden = false;
  reader.close();
  page.question.focus();
}

async function showStatus() {
  try {
    const status = await getJSON("/v1/status");
    if (!status.ready || !status.index) {
      page.status.textContent = t("statusWaiting");
      setTimeout(showStatus, 3000);
      return;
    }
    const index = status.index;
    page.status.textContent = t("statusLine", { documents: index.documents, chunks: index.chunks,
      updated: (index.updated_at || index.built_at || "").replace("T", " ").slice(0, 16),
      generator: status.models.generator, embedder: status.models.embedder });
  } catch (error) {
    if (error.status === 401) askForKey();
    else if (error.status === 503) setTimeout(showStatus, 3000);
    page.status.textContent = error.status === 503 ? t("statusWaiting") : t("statusFailed", { message: error.message });
  }
}

function askForKey(message) {
  $("key-error").hidden = !message;
  $("key-error").textContent = message || "";
  if (!page.dialog.open) page.dialog.showModal();
}

async function useKey(event) {
  event.preventDefault();
  setKey($("key-input").value.trim());
  try {
    await getJSON("/v1/status");
    page.dialog.close();
    showStatus();
  } catch (error) {
    if (error.status === 401) askForKey(t("keyWrong"));
    else page.dialog.close();
  }
}

// #doc=ID&chars=s-e opens the reader at that passage.
function openLinkedPassage() {
  const params = new URLSearchParams(location.hash.slice(1));
  const chars = /^(\d+)-(\d+)$/.exec(params.get("chars") || "");
  if (!params.get("doc") || !chars) return;
  openPassage(params.get("doc"), [{ number: null, start: Number(chars[1]), end: Number(chars[2]), quote: null }],
    Number(chars[1]));
}

function moveAmongChips(step) {
  const chips = [...document.querySelectorAll(".chip")];
  if (!chips.length) return;
  const at = chips.indexOf(document.activeElement);
  const next = at < 0 ? (step > 0 ? 0 : chips.length - 1) : (at + step + chips.length) % chips.length;
  chips[next].focus();
}

function onKey(event) {
  const typing = event.target.closest?.("input, textarea, [contenteditable]");
  if (event.key === "Escape") {
    if (!page.card.hidden) hideCard();
    else if (reader.isOpen) reader.close();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    event.preventDefault();
    page.question.focus();
  } else if (event.key === "[" || event.key === "]") {
    event.preventDefault();
    moveAmongChips(event.key === "]" ? 1 : -1);
  }
}

function submit(event) {
  event.preventDefault();
  const text = page.question.value.trim();
  if (!text || state.controller || page.send.disabled) return;
  page.question.value = "";
  if (state.mode === "search") search(text);
  else ask(text);
}

translatePage();
state.turns.forEach(show);
page.form.addEventListener("submit", submit);
page.question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submit(event);
});
page.stop.addEventListener("click", () => state.controller?.abort());
$("mode-ask").addEventListener("click", () => setMode("ask"));
$("mode-search").addEventListener("click", () => setMode("search"));
$("new-conversation").addEventListener("click", newConversation);
$("key-form").addEventListener("submit", useKey);
document.addEventListener("keydown", onKey);
window.addEventListener("hashchange", openLinkedPassage);
showStatus();
openLinkedPassage();
