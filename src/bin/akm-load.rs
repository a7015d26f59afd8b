//! `akm-load`: the benchmark's load generator, a process of its own so the
//! load does not share the server's runtime. It keeps `--connections`
//! HTTP/1.1 connections busy for `--warmup-ms` (not counted) and then for
//! `--duration-ms`, signs every request as a caller signs it (SPEC §9) when
//! `--app`/`--secret` are given, and prints one JSON line: requests, rate,
//! latency percentiles, what failed (transport errors, non-2xx, and
//! answers whose `errCode` is not "200"), and `okTotal`: the successful
//! answers including the warm-up's (what the server accepted).
//!
//!     akm-load --url http://127.0.0.1:8081/api/v1/callback --method POST \
//!         --app demo-card-system --secret ... --body '{"tradeNo":"L{seq}",...}'
//!
//! `{seq}` in the body is replaced by a number unique in the run (a
//! callback's tradeNo must be new to be accepted as new).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akm::signing::{SignMethod, Signer};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "akm-load", about = "Load generator of the akm benchmark")]
struct Args {
    /// The URL to call.
    #[arg(long)]
    url: String,
    /// The HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The JSON body; `{seq}` is replaced by a number unique in the run.
    #[arg(long)]
    body: Option<String>,
    /// Sign as this app (with `--secret`).
    #[arg(long, requires = "secret")]
    app: Option<String>,
    /// The app's secret.
    #[arg(long, requires = "app")]
    secret: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Load before measuring, not counted.
    #[arg(long, default_value_t = 2000)]
    warmup_ms: u64,
    /// How long to measure.
    #[arg(long, default_value_t = 10_000)]
    duration_ms: u64,
    /// Give up on a request after this long (counted as an error).
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

/// What one connection saw while measuring.
#[derive(Debug, Default)]
struct Tally {
    /// Latencies of answered requests, in microseconds.
    micros: Vec<u32>,
    errors: u64,
    non_2xx: u64,
    not_ok: u64,
    /// Successful answers, the warm-up's included (what the server took).
    ok_total: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let method = reqwest::Method::from_bytes(args.method.as_bytes())?;
    let signer = match (&args.app, &args.secret) {
        (Some(app), Some(secret)) => Some(Signer::new(
            app.clone(),
            secret.clone(),
            SignMethod::HmacSha256,
        )),
        _ => None,
    };
    let seq = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let measure_from = started + Duration::from_millis(args.warmup_ms);
    let end = measure_from + Duration::from_millis(args.duration_ms);
    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_millis(args.timeout_ms))
            .build()?;
        let (method, url, body, signer, seq) = (
            method.clone(),
            args.url.clone(),
            args.body.clone(),
            signer.clone(),
            seq.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    return t;
                }
                let bytes = body
                    .as_deref()
                    .map(|b| {
                        b.replace("{seq}", &seq.fetch_add(1, Ordering::Relaxed).to_string())
                            .into_bytes()
                    })
                    .unwrap_or_default();
                let mut req = http.request(method.clone(), &url);
                if !bytes.is_empty() {
                    req = req.header("Content-Type", "application/json");
                }
                if let Some(s) = &signer {
                    let now = chrono::Utc::now().timestamp_millis();
                    for (k, v) in s.headers_for_url(method.as_str(), &url, &bytes, now) {
                        req = req.header(k, v);
                    }
                }
                let outcome = match req.body(bytes).send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        match r.bytes().await {
                            Ok(b) => Some((ok, answered_ok(&b))),
                            Err(_) => None,
                        }
                    }
                    Err(_) => None,
                };
                if outcome == Some((true, true)) {
                    t.ok_total += 1;
                }
                if sent < measure_from {
                    continue;
                }
                match outcome {
                    None => t.errors += 1,
                    Some((status_ok, body_ok)) => {
                        let us = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                        t.micros.push(us);
                        if !status_ok {
                            t.non_2xx += 1;
                        } else if !body_ok {
                            t.not_ok += 1;
                        }
                    }
                }
            }
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.micros.extend(t.micros);
        all.errors += t.errors;
        all.non_2xx += t.non_2xx;
        all.not_ok += t.not_ok;
        all.ok_total += t.ok_total;
    }
    all.micros.sort_unstable();
    let secs = args.duration_ms as f64 / 1000.0;
    let ms = |q: f64| percentile(&all.micros, q) as f64 / 1000.0;
    let report = serde_json::json!({
        "url": args.url,
        "connections": args.connections,
        "durationMs": args.duration_ms,
        "requests": all.micros.len(),
        "rps": (all.micros.len() as f64 / secs).round(),
        "p50Ms": ms(0.50),
        "p90Ms": ms(0.90),
        "p99Ms": ms(0.99),
        "maxMs": ms(1.0),
        "errors": all.errors,
        "non2xx": all.non_2xx,
        "notOk": all.not_ok,
        "okTotal": all.ok_total,
    });
    println!("{report}");
    Ok(())
}

/// An answer that is not the spec's envelope counts as fine (probes);
/// an envelope must say errCode "200".
fn answered_ok(body: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => v.get("errCode").is_none_or(|c| c.as_str() == Some("200")),
        Err(_) => true,
    }
}

/// The `q` quantile of sorted `xs` (0 when empty).
fn percentile(xs: &[u32], q: f64) -> u32 {
    if xs.is_empty() {
        return 0;
    }
    let i = ((xs.len() - 1) as f64 * q).round() as usize;
    xs[i.min(xs.len() - 1)]
}
