// How many demo tabs are open on this origin, so "open another tab" has something to show next
// to the server's refresh counter. A tiny heartbeat on its own BroadcastChannel; it carries tab
// ids only, nothing about the session.

const HEARTBEAT_MS = 2000;
const GONE_AFTER_MS = 5000;

export class Presence {
  /** @param {(count: number) => void} onChange */
  constructor(onChange) {
    this.id = crypto.randomUUID().slice(0, 8);
    this.seen = new Map([[this.id, Date.now()]]);
    this.onChange = onChange;
    if (!("BroadcastChannel" in globalThis)) return;
    this.channel = new BroadcastChannel("wasm-token-manager-demo:presence");
    this.channel.onmessage = ({ data }) => {
      if (!data || typeof data.id !== "string") return;
      if (data.type === "bye") this.seen.delete(data.id);
      else this.seen.set(data.id, Date.now());
      if (data.type === "hello") this.post("here");
      this.update();
    };
    this.post("hello");
    this.timer = setInterval(() => {
      this.post("here");
      const now = Date.now();
      for (const [id, at] of this.seen) {
        if (id !== this.id && now - at > GONE_AFTER_MS) this.seen.delete(id);
      }
      this.seen.set(this.id, now);
      this.update();
    }, HEARTBEAT_MS);
    addEventListener("pagehide", () => this.post("bye"));
    addEventListener("pageshow", (e) => e.persisted && this.post("hello"));
    this.update();
  }

  post(type) {
    this.channel?.postMessage({ type, id: this.id });
  }

  update() {
    this.onChange(this.seen.size);
  }
}
