// Text helpers with no DOM: character offsets and the Markdown an answer is copied as.

// The server counts characters as Python does (code points); JavaScript strings count UTF-16
// units, which differ after any character outside the Basic Multilingual Plane (an emoji).
// codePointIndex("a😀b") -> [0, 1, 3, 4]: the UTF-16 index of each code point, and of the end.
export function codePointIndex(text) {
  const index = [];
  let at = 0;
  for (const character of text) {
    index.push(at);
    at += character.length;
  }
  index.push(at);
  return index;
}

// The UTF-16 [start, end) of code points [start, end), or null when outside the text.
export function utf16Range(index, start, end) {
  if (!(Number.isInteger(start) && Number.isInteger(end)) || start < 0 || end < start || end >= index.length) {
    return null;
  }
  return [index[start], index[end]];
}

// Non-overlapping spans to mark, sorted; an overlapping one joins the span before it.
export function mergeSpans(spans) {
  const sorted = [...spans].sort((a, b) => a.from - b.from || b.to - a.to);
  const merged = [];
  for (const span of sorted) {
    const last = merged[merged.length - 1];
    if (last && span.from < last.to) {
      last.to = Math.max(last.to, span.to);
      last.members.push(span);
    } else {
      merged.push({ ...span, members: [span] });
    }
  }
  return merged;
}

// The answer as Markdown with footnotes that carry each verified quote, its article, date and
// offsets: "Mehr als 20 [^1]\n\n[^1]: „…“ (000_81614b4d2948c4c6, 2025-09-02, characters 10–20)".
export function answerMarkdown(question, answer, chars) {
  const citations = (answer.citations || []).filter((c) => c.verified);
  const numbers = new Set(citations.map((c) => c.number));
  let text = (answer.answer || "").replace(/\[(\d+(?:\s*[,;]\s*\d+)*)\]/g, (marker, list) =>
    list.split(/\s*[,;]\s*/).map((n) => (numbers.has(Number(n)) ? `[^${n}]` : "")).join(""));
  text = text.replace(/[ \t]+([.,;:!?])/g, "$1").trim();
  const lines = [`**${question.replace(/\*/g, "\\*")}**`, "", text];
  if (citations.length) lines.push("");
  for (const c of citations) {
    const where = [c.doc_id, c.date, chars(c.start, c.end)].filter(Boolean).join(", ");
    lines.push(`[^${c.number}]: „${c.quote.replace(/\s+/g, " ")}“ (${where})`);
  }
  return lines.join("\n") + "\n";
}
