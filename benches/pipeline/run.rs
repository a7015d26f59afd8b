//! Running the load generator (`akm-load`, a process of its own) and
//! reducing its runs to a table row.

use serde_json::Value;

/// How long and how often each row runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup_ms: u64,
    pub duration_ms: u64,
    pub runs: usize,
    pub connections: usize,
}

/// One `akm-load` run against `url`; its JSON report.
pub fn load(plan: Plan, url: &str, extra: &[String]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akm-load"))
        .args(["--url", url])
        .args(["--connections", &plan.connections.to_string()])
        .args(["--warmup-ms", &plan.warmup_ms.to_string()])
        .args(["--duration-ms", &plan.duration_ms.to_string()])
        .args(extra)
        .output()
        .expect("run akm-load");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("akm-load report")
}

/// A row of the table: the median run by rate.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    pub failed: u64,
    /// Successful answers of every run, warm-ups included.
    pub ok_total: u64,
}

pub fn measure(
    plan: Plan,
    name: &'static str,
    url: &str,
    extra: impl Fn(usize) -> Vec<String>,
) -> Row {
    // scripts/flamegraph.sh waits for this line to start sampling
    eprintln!("measuring {name}");
    let mut runs: Vec<Value> = (0..plan.runs).map(|r| load(plan, url, &extra(r))).collect();
    // which row the memory grows in (the table has only the peak)
    eprintln!(
        "measured {name}: RSS {:.0} MiB, peak so far {:.0} MiB",
        rss_mib(),
        peak_rss_mib()
    );
    let ok_total = runs
        .iter()
        .map(|v| v["okTotal"].as_u64().unwrap_or(0))
        .sum();
    let failed = runs
        .iter()
        .map(|v| {
            ["errors", "non2xx", "notOk"]
                .iter()
                .map(|k| v[k].as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .sum();
    runs.sort_by(|a, b| {
        a["rps"]
            .as_f64()
            .partial_cmp(&b["rps"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let m = &runs[runs.len() / 2];
    Row {
        name,
        rps: m["rps"].as_f64().unwrap_or(0.0),
        p50: m["p50Ms"].as_f64().unwrap_or(0.0),
        p99: m["p99Ms"].as_f64().unwrap_or(0.0),
        failed,
        ok_total,
    }
}

/// The process's peak resident set (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// The resident set of this process now, in MiB (0 where /proc is absent).
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// A size line (in kB) of /proc/self/status, in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
