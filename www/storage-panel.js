// "What the page can see": every place JavaScript could have stored a token, read back live.
// The access token lives only in wasm memory and the refresh cookie is HttpOnly, so each row
// should say "empty".

import { h } from "./dom.js";

/** Reads every JS-visible store of this origin. Each entry: { name, items: string[] }. */
export async function readStores() {
  const keys = (storage) => {
    try {
      return Array.from({ length: storage.length }, (_, i) => storage.key(i));
    } catch {
      return ["(unreadable)"];
    }
  };
  const cookies = document.cookie
    .split(";")
    .map((c) => c.trim())
    .filter(Boolean)
    .map((c) => c.split("=")[0]);
  let databases = [];
  try {
    databases = (await indexedDB.databases()).map((d) => d.name);
  } catch {
    databases = [];
  }
  let cacheNames = [];
  try {
    cacheNames = "caches" in globalThis ? await caches.keys() : [];
  } catch {
    cacheNames = [];
  }
  return [
    { name: "localStorage", items: keys(localStorage) },
    { name: "sessionStorage", items: keys(sessionStorage) },
    { name: "document.cookie", items: cookies },
    { name: "IndexedDB", items: databases },
    { name: "Cache API", items: cacheNames },
  ];
}

export class StoragePanel {
  /** @param {HTMLTableSectionElement} body @param {HTMLElement} verdict */
  constructor(body, verdict) {
    this.body = body;
    this.verdict = verdict;
  }

  async refresh() {
    const stores = await readStores();
    this.body.replaceChildren(
      ...stores.map(({ name, items }) =>
        h(
          "tr",
          { dataset: { store: name, count: items.length } },
          h("th", { scope: "row" }, h("code", {}, name)),
          h(
            "td",
            { class: items.length ? "held-items" : "empty" },
            items.length ? `${items.length}: ${items.join(", ")}` : "empty",
          ),
        ),
      ),
    );
    const total = stores.reduce((n, s) => n + s.items.length, 0);
    this.verdict.textContent = total
      ? `${total} item(s) on this origin — wasm-token-manager writes none; look in DevTools for their owner.`
      : "Nothing. The access token is in wasm memory; the refresh cookie is HttpOnly.";
    this.verdict.dataset.clean = String(total === 0);
  }
}
