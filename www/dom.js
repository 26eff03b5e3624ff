// Small DOM and formatting helpers for the demo page. Everything is built with
// `textContent`-style appends, never `innerHTML`, so claims from a token can never inject markup.

/** Creates an element: `h("td", { class: "k" }, "text", childElement)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    // Through the CSSOM, never a `style` attribute: the page's Content-Security-Policy has no
    // 'unsafe-inline' for styles, and it refuses style attributes but not `el.style`.
    else if (key === "style") el.style.cssText = String(value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(
    ...children
      .flat()
      .filter((c) => c != null && c !== false)
      .map((c) => (c instanceof Node ? c : String(c))),
  );
  return el;
}

/** `document.querySelector`, throwing when the page lacks the element (a typo, not a state). */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`demo page: no element ${selector}`);
  return el;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** `14:03:27.4` in local time. */
export function clockTime(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${Math.floor(d.getMilliseconds() / 100)}`;
}

/** A duration in seconds with one decimal: `12.3 s`. Negative values are clamped to zero. */
export function seconds(ms) {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

/** "in 3.2 s" or "3.2 s ago". */
export function relative(ms, now) {
  const d = ms - now;
  return d >= 0 ? `in ${seconds(d)}` : `${seconds(-d)} ago`;
}
