//! A steady-rate HTTP load generator for the deploy benchmark (scripts/bench-deploy.sh): each of
//! `--connections` workers keeps one keep-alive connection and sends its share of `--rate`
//! requests per second, without retries, until `--duration` passes or `--stop-file` appears.
//! Prints totals, non-2xx answers, connection errors and latency percentiles, and with
//! `--slots` the share of answers each slot gave (from `/health`'s `slot`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    /// Requests per second, in all.
    #[arg(long, default_value_t = 400)]
    rate: u32,
    #[arg(long, default_value_t = 16)]
    connections: u32,
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop when this file exists.
    #[arg(long)]
    stop_file: Option<PathBuf>,
    /// Each request as a new client: its own route cookie (a canary's share is a share of
    /// clients).
    #[arg(long)]
    new_clients: bool,
    /// Count the slot named in each answer's JSON body.
    #[arg(long)]
    slots: bool,
    /// Stop after this many requests in all.
    #[arg(long)]
    requests: Option<u64>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    non_2xx: u64,
    errors: Vec<String>,
    slots: std::collections::BTreeMap<String, u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let started = Instant::now();
    let per_worker = Duration::from_secs_f64(args.connections as f64 / args.rate as f64);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..args.connections)
        .map(|worker| {
            let url = args.url.clone();
            let (duration, stop_file) = (args.duration, args.stop_file.clone());
            let (new_clients, count_slots, limit) = (args.new_clients, args.slots, args.requests);
            let sent = sent.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .danger_accept_invalid_certs(true)
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                let mut tally = Tally::default();
                let mut tick = tokio::time::interval(per_worker);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while started.elapsed() < duration
                    && !stop_file.as_ref().is_some_and(|f| f.exists())
                {
                    let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if limit.is_some_and(|limit| n >= limit) {
                        break;
                    }
                    tick.tick().await;
                    let t = Instant::now();
                    let mut request = client.get(&url);
                    if new_clients {
                        request = request.header("cookie", format!("deployer_route=c{worker}-{n}"));
                    }
                    match request.send().await {
                        Ok(r) => {
                            let ok = r.status().is_success();
                            let body = r.bytes().await.unwrap_or_default();
                            tally.latencies_us.push(t.elapsed().as_micros() as u64);
                            if !ok {
                                tally.non_2xx += 1;
                            }
                            if count_slots {
                                let slot = serde_json::from_slice::<serde_json::Value>(&body)
                                    .ok()
                                    .and_then(|v| v["slot"].as_str().map(str::to_string))
                                    .unwrap_or_else(|| "?".into());
                                *tally.slots.entry(slot).or_default() += 1;
                            }
                        }
                        Err(e) => tally
                            .errors
                            .push(format!("{e:?}").chars().take(200).collect()),
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.await.expect("worker");
        all.latencies_us.extend(t.latencies_us);
        all.non_2xx += t.non_2xx;
        all.errors.extend(t.errors);
        for (slot, n) in t.slots {
            *all.slots.entry(slot).or_default() += n;
        }
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let v = &all.latencies_us;
        if v.is_empty() {
            0.0
        } else {
            v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    let total = all.latencies_us.len() as u64 + all.errors.len() as u64;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "requests {total} in {secs:.1}s ({:.0}/s)",
        total as f64 / secs
    );
    println!("non-2xx {}", all.non_2xx);
    println!("connection errors {}", all.errors.len());
    println!(
        "latency ms p50 {:.2} p99 {:.2} max {:.2}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let answered: u64 = all.slots.values().sum();
    for (slot, n) in &all.slots {
        println!(
            "slot {slot} {n} ({:.2}%)",
            *n as f64 * 100.0 / answered.max(1) as f64
        );
    }
    for e in all.errors.iter().take(5) {
        println!("  error: {e}");
    }
}
