// The README's recipes: ky and axios sending every request through `auth.fetch`, so the token
// is attached (to `apiOrigins` only), refreshed first when due, and a 401 is handled once.
import axios, { type AxiosInstance } from "axios";
import ky, { type KyInstance } from "ky";

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** ky: its `fetch` option. */
export function kyWith(authFetch: Fetch): KyInstance {
  return ky.create({ fetch: authFetch });
}

/** axios: the fetch adapter, given `auth.fetch` as its `fetch`. */
export function axiosWith(authFetch: Fetch): AxiosInstance {
  return axios.create({ adapter: "fetch", env: { fetch: authFetch } });
}
