//! Load for the support desk's two flows (scripts/bench-privacy.sh), against a running app
//! whose simulator holds the seeded contacts:
//! - `search`: 20 users, each typing names the way people do (`g`, `gr`, `gra`, … a pause, the
//!   whole name again, then a last-name prefix), each keystroke a `POST /api/contacts/search`
//!   sent `pace_ms` after the last one was sent (or at once when its answer took longer; 0: no
//!   typing at all, each user's next query as soon as the last is answered, a stress burst),
//!   a second's pause between names. Prints p50/p99 of the answers and how many came from the
//!   app's search cache.
//! - `lookup`: `GET /api/contacts/lookup` of `phones` seeded numbers, warmed once (so every
//!   answer is the encrypted cache's), then `connections` callers for `seconds`. Prints
//!   lookups/s and p50/p99.
//!
//! Usage: privacy_load search BASE ADMIN_TOKEN [users=20] [sessions=15] [pace_ms=150]
//!        privacy_load lookup BASE ADMIN_TOKEN [connections=16] [seconds=10] [phones=500]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The first names seeded (scripts/bench-privacy.sh seeds 50 contacts of each).
const NAMES: [&str; 20] = [
    "ada",
    "alan",
    "grace",
    "linus",
    "ken",
    "barbara",
    "dennis",
    "margaret",
    "edsger",
    "donald",
    "frances",
    "john",
    "radia",
    "tim",
    "katherine",
    "guido",
    "bjarne",
    "anita",
    "niklaus",
    "hedy",
];

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn search(base: String, admin: String, users: usize, sessions: usize, pace_ms: u64) {
    let pace = Duration::from_millis(pace_ms);
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    for u in 0..users {
        let r: Value = http
            .post(format!("{base}/api/users"))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("desk-{u}-{}", std::process::id()), "role": "support"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(r["token"].as_str().expect("a token").to_string());
    }
    let started = Instant::now();
    let tasks: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(u, token)| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (u as u64 + 1));
                let mut out = Vec::new();
                for _ in 0..sessions {
                    let name = NAMES[rng.below(NAMES.len() as u64) as usize];
                    let mut queries: Vec<String> =
                        (1..=name.len()).map(|n| name[..n].to_string()).collect();
                    queries.push(name.to_string());
                    queries.push(format!("{name} l{}", rng.below(5)));
                    for q in queries {
                        let t = Instant::now();
                        let r = http
                            .post(format!("{base}/api/contacts/search"))
                            .bearer_auth(&token)
                            .json(&json!({"query": q, "limit": 10}))
                            .send()
                            .await
                            .unwrap();
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        out.push((t.elapsed(), status, body["cached"] == true));
                        tokio::time::sleep(pace.saturating_sub(t.elapsed())).await;
                    }
                    if !pace.is_zero() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let mut times: Vec<Duration> = all.iter().map(|(d, _, _)| *d).collect();
    times.sort();
    let ok = all.iter().filter(|(_, s, _)| *s == 200).count();
    let cached = all.iter().filter(|(_, s, c)| *s == 200 && *c).count();
    println!(
        "search: {} requests from {users} users in {:.1} s, {} not 200; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; answered from the search cache {:.1} %",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() - ok,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        100.0 * cached as f64 / ok.max(1) as f64
    );
}

async fn lookup(base: String, admin: String, connections: usize, seconds: u64, phones: usize) {
    let http = reqwest::Client::new();
    let phone = |i: usize| format!("%2B1202555{:04}", 1000 + i);
    for i in 0..phones {
        let r: Value = http
            .get(format!("{base}/api/contacts/lookup?phone={}", phone(i)))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["found"], true, "seeded phone {i}: {r}");
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (http, base, admin) = (http.clone(), base.clone(), admin.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0xDEAD_BEEF ^ (c as u64 + 1));
                let mut out = Vec::new();
                while Instant::now() < until {
                    let i = rng.below(phones as u64) as usize;
                    let t = Instant::now();
                    let r = http
                        .get(format!("{base}/api/contacts/lookup?phone={}", phone(i)))
                        .bearer_auth(&admin)
                        .send()
                        .await
                        .unwrap();
                    let ok = r.status() == 200;
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    out.push((t.elapsed(), ok && body["source"] == "cache"));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut times: Vec<Duration> = all.iter().map(|(d, _)| *d).collect();
    times.sort();
    let from_cache = all.iter().filter(|(_, c)| *c).count();
    println!(
        "lookup: {:.0} lookups/s ({} in {elapsed:.1} s, {connections} callers), {:.1} % from the cache; p50 {:.2} ms, p99 {:.2} ms",
        all.len() as f64 / elapsed,
        all.len(),
        100.0 * from_cache as f64 / all.len().max(1) as f64,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (base, admin) = (args[2].clone(), args[3].clone());
    match args.get(1).map(String::as_str) {
        Some("search") => {
            let (users, sessions) = (arg(4, 20) as usize, arg(5, 15) as usize);
            search(base, admin, users, sessions, arg(6, 150)).await
        }
        Some("lookup") => {
            lookup(
                base,
                admin,
                arg(4, 16) as usize,
                arg(5, 10),
                arg(6, 500) as usize,
            )
            .await
        }
        _ => eprintln!("usage: privacy_load search|lookup BASE ADMIN_TOKEN …"),
    }
}
