// `wasm-token-manager/react`: React (18 or later) bindings over the default entry.
import type { ReactElement, ReactNode } from "react";
import type { Claims, SessionState, TokenManager, TokenManagerError, TokenManagerOptions } from "../wasm_token_manager.js";

/** What `useSession()` returns: a frozen object, the same one until something in it changes. */
export interface Session {
    /** `true` until `restore()` settled; always `true` when rendered on the server. */
    readonly isLoading: boolean;
    /** The manager's `state` (`"signedOut"` while loading). */
    readonly state: SessionState;
    /** The token's claims, decoded for display (not verified), or `null` when signed out. */
    readonly claims: Claims | null;
    /** Why `init()`, the constructor or `restore()` failed; cleared when a session starts. */
    readonly error: TokenManagerError | null;
}

export interface TokenManagerProviderProps {
    /** Passed to `new TokenManager(options)` on the first mount; later changes are ignored. */
    options?: TokenManagerOptions;
    children?: ReactNode;
}

/**
 * Creates one `TokenManager` for its subtree after `init()`, in an effect (so never on the
 * server), and calls `restore()`. StrictMode's double mount keeps the one manager and its one
 * restore request; unmounting frees it.
 */
export function TokenManagerProvider(props: TokenManagerProviderProps): ReactElement;

/** The session, through `useSyncExternalStore` over the manager's events (no tearing). */
export function useSession(): Session;

/** The manager (for `login`, `logout` …), or `null` before it exists and on the server. */
export function useTokenManager(): TokenManager | null;

/**
 * `auth.fetch`, stable across renders: it waits for `restore()` to settle, then attaches the
 * token. Rejects with `not_authenticated` if the provider unmounts first.
 */
export function useAuthFetch(): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
