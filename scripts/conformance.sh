#!/usr/bin/env bash
# The conformance kit (conformance/) tested on real servers over loopback:
#   1. packs the kit, checks the tarball's files and `publint --strict`, and installs it, as
#      `npx wasm-token-manager-conformance` would;
#   2. runs it against the reference server (debug build, in-memory database, a 2 s grace
#      window, the test switches): every check must pass, none may be skipped;
#   3. runs it against fresh reference servers behind conformance/test/broken-proxy.mjs, which
#      adds faults: the CSRF header added to every request and HttpOnly stripped from Set-Cookie;
#      then every Origin granted by CORS, Retry-After and WWW-Authenticate dropped, and the
#      password echoed in refused logins' error_description; then replays of a rotated cookie
#      answered with yet another cookie and never detected: each run must fail, with exactly
#      the checks those faults break failing (and warning);
#   4. checks no output holds the password, a token or a cookie, that a password on the command
#      line and other usage errors exit 2 and an unreachable backend 3.
# Every process is stopped by its PID. About 20 s once the server is built.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1mconformance:\033[0m %s\n' "$*"; }
die() { echo "conformance: $*" >&2; exit 1; }

say "building the server"
cargo build --quiet -p token-manager-server
SERVER=target/debug/token-manager-server

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

say "packing the kit and installing the tarball"
tarball="$tmp/$(cd conformance && npm pack --pack-destination "$tmp" --loglevel=error | tail -n 1)"
contents=$(tar -tzf "$tarball" | sort | tr '\n' ' ')
expected="package/README.md package/bin/wasm-token-manager-conformance.mjs package/lib/checks.mjs package/lib/expect.mjs package/lib/http.mjs package/lib/run.mjs package/package.json "
[ "$contents" = "$expected" ] || die "the kit's tarball holds: $contents; expected: $expected"
workspace_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
kit_version=$(node -p 'require("./conformance/package.json").version')
[ "$kit_version" = "$workspace_version" ] || die "conformance/package.json is version $kit_version, the workspace $workspace_version"
# publint from scripts/pack-check (pinned there; pack-check.sh installs it the same way).
tools=scripts/pack-check
if [ ! -f "$tools/node_modules/.package-lock.json" ] ||
  [ "$tools/package-lock.json" -nt "$tools/node_modules/.package-lock.json" ]; then
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
fi
"$tools/node_modules/.bin/publint" run --strict "$tarball" > "$tmp/publint.txt" || { cat "$tmp/publint.txt" >&2; die "publint --strict refused the kit's package"; }
npm install --prefix "$tmp/install" --no-audit --no-fund --offline --loglevel=error "$tarball" > /dev/null
KIT="$tmp/install/node_modules/.bin/wasm-token-manager-conformance"
[ -x "$KIT" ] || die "installing the tarball linked no wasm-token-manager-conformance bin"

# A fresh random password per run: the output must never contain it.
password="conf-$(node -e 'process.stdout.write(require("crypto").randomBytes(18).toString("base64url"))')"
SPA_ORIGIN=http://localhost:5173
# The grace window: short, so the reuse checks wait only GRACE + 1 s, yet 2 rather than 1, so
# a replay inside the window still lands inside it on a loaded machine.
GRACE=2

# Starts a server (or the proxy) in the background; sets $url to what it printed.
start() {
  local name=$1
  shift
  "$@" > "$tmp/$name.out" 2> "$tmp/$name.log" &
  pids+=($!)
  for _ in $(seq 300); do
    grep -q '^listening on ' "$tmp/$name.out" && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$tmp/$name.log" >&2; die "$name exited early"; }
    sleep 0.1
  done
  url=$(sed -n 's/^listening on //p' "$tmp/$name.out")
  [ -n "$url" ] || { cat "$tmp/$name.log" >&2; die "$name did not start within 30 s"; }
}

server() {
  start "$1" "$SERVER" --listen 127.0.0.1:0 --database :memory: --grace "$GRACE" --test-switches \
    --demo-user "conformance:$password" --allowed-origin "$SPA_ORIGIN" --www www --pkg pkg
}

# Runs the installed kit with the credentials in the environment; the report goes to $1.json.
kit() {
  local name=$1 target=$2
  set +e
  CONFORMANCE_USERNAME=conformance CONFORMANCE_PASSWORD="$password" "$KIT" "$target" \
    --origin "$SPA_ORIGIN" --grace-seconds "$GRACE" --test-switches --json > "$tmp/$name.json" 2> "$tmp/$name.err"
  status=$?
  set -e
}

# The ids of the checks of a report with the given status, sorted, one line.
ids() { node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(r.checks.filter((c) => c.status === process.argv[2]).map((c) => c.id).sort().join(" "))' "$1" "$2"; }

# No output may hold the password, a JWT or a refresh cookie value (43 base64url characters;
# the JWKS key ids of the server, public thumbprints of the same length, are allowed).
no_secrets() {
  node - "$password" "$kids_url" "$@" <<'JS'
const { readFileSync } = require("node:fs");
const [password, kidsUrl, ...files] = process.argv.slice(2);
(async () => {
  const kids = new Set((await (await fetch(kidsUrl)).json()).keys.map((k) => k.kid));
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    if (text.includes(password)) throw new Error(`${file} contains the password`);
    if (/eyJ[A-Za-z0-9_-]{8,}\./.test(text)) throw new Error(`${file} contains a JWT`);
    for (const [, value] of text.matchAll(/(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])/g)) {
      if (!kids.has(value)) throw new Error(`${file} contains what looks like a refresh cookie value`);
    }
  }
})().catch((e) => {
  console.error(`conformance: ${e.message}`);
  process.exit(1);
});
JS
}

say "against the reference server"
server reference
kids_url="$url/.well-known/jwks.json"
kit reference "$url"
if [ "$status" -ne 0 ]; then
  node -e 'for (const c of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).checks) if (c.status !== "pass") console.error(JSON.stringify(c, null, 2))' "$tmp/reference.json" >&2
  cat "$tmp/reference.err" >&2
  die "the kit failed against the reference server (exit $status)"
fi
skipped=$(ids "$tmp/reference.json" skip)
warned=$(ids "$tmp/reference.json" warn)
[ -z "$skipped$warned" ] || die "against the reference server, skipped: [$skipped], warned: [$warned]"
say "$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).summary.passed' "$tmp/reference.json") checks passed"

# A fresh reference server behind the proxy with the given faults; the kit must exit 1 with
# exactly the expected checks failing.
broken() {
  local name=$1 faults=$2 want=$3 want_warned=${4:-}
  say "against a broken deployment: $faults"
  server "$name-upstream"
  kids_url="$url/.well-known/jwks.json"
  start "$name-proxy" node conformance/test/broken-proxy.mjs "$url" "$faults"
  kit "$name" "$url"
  [ "$status" -eq 1 ] || { cat "$tmp/$name.err" >&2; die "against $faults the kit exited $status, expected 1"; }
  failed=$(ids "$tmp/$name.json" fail)
  [ "$failed" = "$want" ] || die "against $faults, failed: [$failed]; expected: [$want]"
  warned=$(ids "$tmp/$name.json" warn)
  [ "$warned" = "$want_warned" ] || die "against $faults, warned: [$warned]; expected: [$want_warned]"
  no_secrets "$tmp/$name.json" "$tmp/$name.err"
  say "failed as it should: $failed"
}

no_secrets "$tmp/reference.json" "$tmp/reference.err"
broken broken-cors reflect-origin,no-retry-after,no-www-authenticate,echo-credentials \
  "cors.preflight-foreign-origin logout.revokes-session resource.rejects-forged-signature resource.requires-token retry-after.429 retry-after.503"
broken broken-rotation mint-on-replay \
  "refresh.concurrent-one-cookie refresh.grace-replay refresh.reuse-revokes-family" \
  "refresh.reuse-ends-access-tokens"
# Last, so $url and $kids_url stay this deployment's for the text run below.
broken broken-csrf csrf-header,no-httponly \
  "csrf.logout-refusals csrf.refresh-requires-header login.refresh-cookie refresh.rotates-cookie"

say "text output, a credentials file, and usage errors"
(umask 077 && printf 'conformance:%s\n' "$password" > "$tmp/credentials")
"$KIT" "$url" --credentials-file "$tmp/credentials" --origin "$SPA_ORIGIN" \
  --grace-seconds "$GRACE" --only login,csrf.refresh-requires-header > "$tmp/broken.txt" 2>&1 && die "the text run against the broken deployment passed"
grep -q '^FAIL  login.refresh-cookie' "$tmp/broken.txt" || die "the text report does not name login.refresh-cookie"
grep -q 'saw: .*(no HttpOnly)' "$tmp/broken.txt" || die "the text report does not say what it saw"
usage() {
  local what=$1
  shift
  set +e
  CONFORMANCE_USERNAME=conformance CONFORMANCE_PASSWORD="$password" "$KIT" "$@" >> "$tmp/usage.txt" 2>&1
  status=$?
  set -e
  [ "$status" -eq 2 ] || die "$what exited $status, expected 2"
}
usage "a --password flag" "$url" --password "$password"
usage "a --password= flag" "$url" "--password=$password"
usage "no BASE_URL"
usage "an unknown check in --only" "$url" --only no-such-check
usage "a non-integer --grace-seconds" "$url" --grace-seconds soon
set +e
env -u CONFORMANCE_PASSWORD CONFORMANCE_USERNAME=conformance "$KIT" "$url" >> "$tmp/usage.txt" 2>&1
status=$?
"$KIT" http://127.0.0.1:1/ --credentials-file "$tmp/credentials" >> "$tmp/usage.txt" 2>&1
unreachable=$?
set -e
[ "$status" -eq 2 ] || die "no password exited $status, expected 2"
# Port 1 is one fetch refuses outright: unreachable, whatever listens there.
[ "$unreachable" -eq 3 ] || die "an unreachable backend exited $unreachable, expected 3"
no_secrets "$tmp/broken.txt" "$tmp/usage.txt"
say "ok"
