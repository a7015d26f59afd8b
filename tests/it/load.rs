//! The benchmark's load generator (`akm-load`) against a running platform:
//! it signs as a caller, counts what succeeded, and reports what failed.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::*;

fn load(url: &str, extra: &[&str]) -> Value {
    // long enough that callbacks complete inside it: on the shared test
    // broker (the parallel Kafka suite, Tansu on two cores) one can take
    // seconds (CI once saw each of four take over 2 s)
    let duration = if kafka().is_some() { "10000" } else { "2000" };
    let out = Command::new(env!("CARGO_BIN_EXE_akm-load"))
        .args([
            "--url",
            url,
            "--connections",
            "4",
            "--warmup-ms",
            "100",
            "--duration-ms",
            duration,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akm_load_signs_callbacks_and_reports_failures() {
    let app = spawn_with(|_| {}).await;
    let secret = register_app(
        &app.http,
        &app.clock,
        &app.city(),
        "load-card",
        "card-system",
        json!({}),
    )
    .await;
    let body = trade("LOAD-{seq}").to_string();
    let url = format!("{}/api/v1/callback", app.city());
    let url2 = url.clone();
    let (good, bad) = tokio::task::spawn_blocking(move || {
        let good = load(
            &url,
            &[
                "--method",
                "POST",
                "--app",
                "load-card",
                "--secret",
                &secret,
                "--body",
                &body,
            ],
        );
        let bad = load(
            &url2,
            &[
                "--method",
                "POST",
                "--app",
                "load-card",
                "--secret",
                "wrong",
                "--body",
                &body,
            ],
        );
        (good, bad)
    })
    .await
    .unwrap();
    let n = good["requests"].as_u64().unwrap();
    assert!(n > 0, "{good}");
    assert_eq!(good["errors"], 0, "{good}");
    assert_eq!(good["non2xx"], 0, "{good}");
    assert_eq!(good["notOk"], 0, "{good}");
    assert!(good["p99Ms"].as_f64().unwrap() > 0.0, "{good}");
    // every measured callback was new: its trade went to the pipeline
    assert!(app.push().wait_for(n as usize, WAIT).await, "{good}");
    // a wrong secret: every answer refused, and counted as such
    assert!(bad["requests"].as_u64().unwrap() > 0, "{bad}");
    assert_eq!(bad["non2xx"], bad["requests"], "{bad}");
}
