#!/usr/bin/env bash
# Benchmarks issue 11's fairness across portals with real processes (release build) against the
# simulator on loopback: one app process, PORTALS portals installed through the OAuth dance,
# each with a backlog of BACKLOG contacts in the outbox, each portal under its own budget of
# RATE (both the simulator's per-portal window and the app's), access tokens living TTL.
# Prints, in steady state (after the first window's burst, until the first portal runs dry):
#   - total contacts/s against the sum of the portals' ceilings (goal >= 90 %);
#   - the max/min share of contacts sent across portals;
#   - refresh overhead: token refreshes, per portal per token lifetime, and as a share of calls;
#   - RSS: idle, after the installs, at the end; per connected portal.
# Usage: scripts/bench-portals.sh [PORTALS, default 100] [BACKLOG, default 3000]
#        RATE=5/10s TTL=60s scripts/bench-portals.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
portals="${1:-100}"
backlog="${2:-3000}"
cd "$root"
cargo build --release -q -p app -p hubspot-sim --bin app --bin hubspot-sim
exec python3 - "$portals" "$backlog" "${RATE:-5/10s}" "${TTL:-60s}" <<'PY'
import json, os, sqlite3, subprocess, sys, tempfile, time, urllib.error, urllib.parse, urllib.request

P, BACKLOG, RATE, TTL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
count, span = RATE.split("/")
ceiling_calls = int(count) / float(span.rstrip("s"))  # calls/s per portal
SIM, APP = 18490, 18491
HUBS = [100_000 + i for i in range(P)]
work = tempfile.mkdtemp(prefix="bench-portals.")
db = f"{work}/app.db"
procs = []

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
plain = urllib.request.build_opener(NoRedirect)

def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        r = plain.open(req, timeout=30)
    except urllib.error.HTTPError as e:
        r = e
    return r.status, r.headers, r.read()

def call(method, url, body=None, token="bench"):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, json.loads(r.read() or b"null")

def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

try:
    sim_args = ["./target/release/hubspot-sim", "--listen", f"127.0.0.1:{SIM}",
                "--oauth-client", "bench-client:bench-secret", "--portal-id", str(HUBS[0]),
                "--access-token-ttl", TTL, "--oauth-rate-limit", RATE]
    for h in HUBS[1:]:
        sim_args += ["--portal", str(h)]
    procs.append(subprocess.Popen(sim_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    env = dict(APP_LISTEN=f"127.0.0.1:{APP}", HUBSPOT_BASE_URL=f"http://127.0.0.1:{SIM}",
               HUBSPOT_ENABLED="false", ADMIN_TOKEN="bench", DATABASE_URL=f"sqlite://{db}",
               SYNC_SCHEDULE="off", RUST_LOG="warn", PATH=os.environ["PATH"],
               HUBSPOT_CLIENT_ID="bench-client", HUBSPOT_CLIENT_SECRET="bench-secret",
               HUBSPOT_REDIRECT_URI=f"http://127.0.0.1:{APP}/api/integrations/hubspot/callback",
               HUBSPOT_AUTHORIZE_URL=f"http://127.0.0.1:{SIM}/oauth/authorize",
               TOKEN_ENCRYPTION_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
               HUBSPOT_RATE_LIMIT=RATE)
    app = subprocess.Popen(["./target/release/app"], env=env, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("APP_LOG", os.devnull), "w"))
    procs.append(app)
    for _ in range(400):
        try:
            if get(f"http://127.0.0.1:{APP}/ready")[0] == 200:
                break
        except Exception:
            time.sleep(0.025)
    rss_idle = rss_mb(app.pid)

    # The install dance, as a browser does it, once per portal.
    for h in HUBS:
        s, hdr, _ = get(f"http://127.0.0.1:{APP}/api/integrations/hubspot/install")
        assert s == 302, s
        cookie = hdr["Set-Cookie"].split(";")[0]
        s, hdr, _ = get(hdr["Location"] + f"&portal={h}")
        assert s == 302, s
        s, _, page = get(hdr["Location"], {"Cookie": cookie})
        assert s == 200, (s, page[:200])
    rss_installed = rss_mb(app.pid)

    # Every portal's backlog, queued round-robin in chunks of 1,000.
    t_enqueue = time.time()
    for start in range(0, BACKLOG, 1000):
        for h in HUBS:
            n = min(1000, BACKLOG - start)
            call("POST", f"http://127.0.0.1:{APP}/api/contacts?portal={h}",
                 {"contacts": [{"email": f"c{i}@p{h}.example.com", "firstname": "B"} for i in range(start, start + n)]})
    t0 = time.time()
    print(f"queued {P} x {BACKLOG} contacts in {t0 - t_enqueue:.1f} s", flush=True)

    con = sqlite3.connect(db, timeout=30)
    def sent_by_portal():
        rows = con.execute("SELECT portal_id, COUNT(*) FROM outbox WHERE state = 'sent' GROUP BY portal_id").fetchall()
        got = {p: n for p, n in rows}
        return {h: got.get(h, 0) for h in HUBS}
    # Steady state: from the end of the first window's burst to the first portal running dry.
    window = float(span.rstrip("s"))
    time.sleep(window + 1)
    a_t, a = time.time(), sent_by_portal()
    while True:
        time.sleep(1)
        b_t, b = time.time(), sent_by_portal()
        if max(b.values()) >= BACKLOG * 0.95 or b_t - a_t > 120:
            break
    shares = [b[h] - a[h] for h in HUBS]
    total = sum(shares) / (b_t - a_t)
    ceiling = P * ceiling_calls * 100
    oauth = json.loads(get(f"http://127.0.0.1:{SIM}/_sim/oauth")[2])
    refreshes = oauth["grants"].get("refresh_token", 0)
    stats = json.loads(get(f"http://127.0.0.1:{SIM}/_sim/stats")[2])
    calls = sum(r["count"] for r in stats["byRoute"])
    s429 = sum(r["count"] for r in stats["byRoute"] if r["status"] == 429)
    s401 = sum(r["count"] for r in stats["byRoute"] if r["status"] == 401)
    elapsed = b_t - t_enqueue
    ttl_s = float(TTL.rstrip("s")) if TTL.endswith("s") and not TTL.endswith("ms") else float("nan")
    rss_end = rss_mb(app.pid)
    print(f"portals: {P}, backlog {BACKLOG} each, budget {RATE} per portal (ceiling {ceiling:.0f} contacts/s summed), tokens live {TTL}")
    print(f"steady state ({b_t - a_t:.0f} s): {total:.0f} contacts/s = {100 * total / ceiling:.1f} % of the summed ceilings")
    print(f"share across portals: max/min = {max(shares)}/{min(shares)} = {max(shares) / max(min(shares), 1):.2f}")
    print(f"refreshes: {refreshes} in {elapsed:.0f} s = {refreshes / P / (elapsed / ttl_s):.2f} per portal per token lifetime; {100 * refreshes / max(calls, 1):.2f} % of {calls} calls; 429s: {s429}; 401s: {s401}")
    print(f"RSS: {rss_idle:.1f} MB idle, {rss_installed:.1f} MB with {P} portals connected ({1024 * (rss_installed - rss_idle) / P:.0f} KB per portal), {rss_end:.1f} MB at the end ({1024 * (rss_end - rss_idle) / P:.0f} KB per portal)")
finally:
    for p in procs:
        p.kill()
    subprocess.run(["rm", "-rf", work])
PY
