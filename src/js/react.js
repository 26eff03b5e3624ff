// `wasm-token-manager/react`: React bindings over the default entry (same wasm, same manager
// class). Hand-written, no JSX, minified by scripts/build.sh into pkg/react/index.js.
//
// One store per <TokenManagerProvider>, created during render without side effects; the
// manager itself is created in an effect (never on the server), after `init()`. React's
// StrictMode runs the effect, its cleanup and the effect again synchronously: the cleanup only
// schedules the disposal for a microtask, and the second run cancels it, so double mounting
// keeps one manager and makes one restore request. `useSession` reads the store through
// `useSyncExternalStore` (no tearing); its server snapshot is the loading one, which is also
// the client's first, so hydration matches and then restores.
import { createContext, createElement, useContext, useEffect, useState, useSyncExternalStore } from "react";
import init, { TokenManager } from "../wasm_token_manager.js";

const EVENTS = ["login", "refresh", "logout", "expired", "statechange"];
const LOADING = Object.freeze({ isLoading: true, state: "signedOut", claims: null, error: null });
const NONE = () => null;

function createStore(options) {
  let manager = null;
  let snapshot = LOADING;
  let loading = true; // until init(), the constructor and restore() have settled
  let error = null;
  let generation = 0; // a manager from an earlier mount never settles a later one
  let disposing = false;
  let settled;
  let ready = new Promise((resolve) => (settled = resolve));
  const listeners = new Set();
  const emit = () => listeners.forEach((listener) => listener());
  const onEvent = (event) => {
    if (event.type === "login") error = null;
    emit();
  };
  const settle = (mine, failure) => {
    if (mine !== generation) return;
    if (failure) error = failure;
    loading = false;
    settled();
    emit();
  };

  return {
    start() {
      if (disposing) return void (disposing = false); // StrictMode's second mount: keep it
      const mine = ++generation;
      init() // shared: the glue makes one instance of concurrent calls (and retries a failure)
        .then(() => {
          if (mine !== generation) return;
          manager = new TokenManager(options);
          for (const type of EVENTS) manager.addEventListener(type, onEvent);
          emit();
          return manager.restore();
        })
        .then(() => settle(mine), (failure) => settle(mine, failure));
    },
    stop() {
      disposing = true;
      queueMicrotask(() => {
        if (!disposing) return;
        disposing = false;
        generation += 1;
        if (manager) {
          for (const type of EVENTS) manager.removeEventListener(type, onEvent);
          manager.free();
          manager = null;
        }
        error = null;
        loading = true;
        snapshot = LOADING;
        settled(); // a waiting fetch now rejects
        ready = new Promise((resolve) => (settled = resolve));
        emit();
      });
    },
    getSnapshot() {
      const last = snapshot;
      const state = manager ? manager.state : last.state;
      const claims = manager ? manager.claims() : last.claims;
      if (state === last.state && claims === last.claims && loading === last.isLoading && error === last.error) return last;
      return (snapshot = Object.freeze({ isLoading: loading, state, claims, error }));
    },
    getManager: () => manager,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    // Waits for restore() to settle, so a request made while the page loads carries the
    // restored token instead of failing with not_authenticated.
    fetch: (input, init) =>
      ready.then(() =>
        manager
          ? manager.fetch(input, init)
          : Promise.reject(error ?? Object.assign(new Error("no TokenManager: the provider is unmounted"), { name: "TokenManagerError", code: "not_authenticated" })),
      ),
  };
}

const Context = createContext(null);

function useStore(hook) {
  const store = useContext(Context);
  if (store === null) throw new Error(`${hook}() must be called inside <TokenManagerProvider>`);
  return store;
}

export function TokenManagerProvider({ options, children }) {
  const [store] = useState(() => createStore(options));
  useEffect(() => {
    store.start();
    return store.stop;
  }, [store]);
  return createElement(Context.Provider, { value: store }, children);
}

export function useSession() {
  const store = useStore("useSession");
  return useSyncExternalStore(store.subscribe, store.getSnapshot, () => LOADING);
}

export function useTokenManager() {
  const store = useStore("useTokenManager");
  return useSyncExternalStore(store.subscribe, store.getManager, NONE);
}

export function useAuthFetch() {
  return useStore("useAuthFetch").fetch;
}
