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
    /// For a row run in rounds with the baseline: the median over the
    /// rounds of its rate over the baseline's in the same round.
    pub paired: Option<f64>,
}

/// The median over rounds of `runs[i]`'s rate over `baseline[i]`'s.
pub fn paired_ratio(runs: &[Value], baseline: &[Value]) -> Option<f64> {
    let rate = |v: &Value| v["rps"].as_f64().unwrap_or(0.0);
    let mut ratios: Vec<f64> = runs
        .iter()
        .zip(baseline)
        .filter(|(_, b)| rate(b) > 0.0)
        .map(|(r, b)| rate(r) / rate(b))
        .collect();
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    ratios.get(ratios.len() / 2).copied()
}

/// One row to measure: where `akm-load` goes, and its extra arguments for
/// run `r` (its number within the row).
pub struct Spec<'a> {
    pub name: &'static str,
    pub url: String,
    pub extra: Box<dyn Fn(usize) -> Vec<String> + 'a>,
}

/// Measure `rows` in rounds, one run of each row per round, so that rows
/// compared with each other see the same moments of a shared machine; each
/// row's runs (`akm-load` reports), in the order given.
pub fn rounds(plan: Plan, rows: &[Spec]) -> Vec<Vec<Value>> {
    let mut runs = vec![Vec::new(); rows.len()];
    for r in 0..plan.runs {
        for (i, spec) in rows.iter().enumerate() {
            // scripts/flamegraph.sh waits for this line to start sampling
            eprintln!("measuring {} (run {})", spec.name, r + 1);
            runs[i].push(load(plan, &spec.url, &(spec.extra)(r)));
        }
    }
    for (spec, runs) in rows.iter().zip(&runs) {
        // the spread of the runs, and which row the memory grows in (the
        // table has only the median and the peak)
        let rates: Vec<String> = runs
            .iter()
            .map(|v| format!("{:.0}", v["rps"].as_f64().unwrap_or(0.0)))
            .collect();
        eprintln!(
            "measured {}: req/s {} ; RSS {:.0} MiB, peak so far {:.0} MiB",
            spec.name,
            rates.join(" "),
            rss_mib(),
            peak_rss_mib()
        );
    }
    runs
}

/// One row measured on its own: `plan.runs` runs, reduced to the median.
pub fn measure(
    plan: Plan,
    name: &'static str,
    url: &str,
    extra: impl Fn(usize) -> Vec<String>,
) -> Row {
    let spec = Spec {
        name,
        url: url.to_string(),
        extra: Box::new(extra),
    };
    let runs = rounds(plan, std::slice::from_ref(&spec)).remove(0);
    row(name, runs)
}

/// Reduce runs of one row to the row: the median run by rate.
pub fn row(name: &'static str, mut runs: Vec<Value>) -> Row {
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
        paired: None,
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
