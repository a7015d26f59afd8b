//! Data and accepted trades survive `kill -9` of the whole binary.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use akm::sim::PushSim;
use serde_json::json;

use crate::helpers::{call_json, operator, register_signer, trade, WAIT, ZHANG};

/// The test run's settings for a child, its topics applied.
async fn child_env(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let s = crate::helpers::fast_failover(crate::helpers::settings(dir));
    crate::helpers::apply_topics(&s).await;
    crate::child::env(&s)
}

/// Kills the demo child when the test ends, however it ends.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_accepted_trades_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let push = PushSim::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap();
    push.fail_next(u32::MAX, 503); // nothing gets through before the kill
    let http = reqwest::Client::new();
    let mut env = child_env(dir.path()).await;
    env.push(("AKM_PUSH_URL", push.url()));
    let mut node = crate::child::serve("all", dir.path(), &env, Default::default());
    let city = node.city();
    let card = register_signer(&http, &city, "t-card", "card-system", json!({})).await;
    let r = call_json(
        &http,
        &card,
        "POST",
        &format!("{city}/api/v1/callback"),
        &trade("K-1"),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    node.kill(); // SIGKILL
    drop(node);
    tokio::time::sleep(crate::helpers::RESTART_DELAY).await;

    push.fail_next(0, 503);
    let node = crate::child::serve("all", dir.path(), &env, Default::default());
    let (province, city) = (node.province(), node.city());
    assert!(push.wait_for(1, WAIT).await, "the accepted trade was lost");
    assert_eq!(push.pushes()[0]["tradeNo"], "K-1");
    // demo data (seeded on the first start) is still there: residents and configs
    let r = call_json(
        &http,
        &operator(),
        "POST",
        &format!("{province}/admin/v1/qrcodes"),
        &json!({"idcardNo": ZHANG}),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    // the card system's app survived too
    let r = call_json(
        &http,
        &card,
        "POST",
        &format!("{city}/api/v1/transcode-config"),
        &json!({"cityNo": "340100", "targetType": "3401002"}),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    // and the trade is not taken twice
    let r = call_json(
        &http,
        &card,
        "POST",
        &format!("{city}/api/v1/callback"),
        &trade("K-1"),
    )
    .await;
    assert!(r["errMsg"].as_str().unwrap().contains("重复"), "{r}");
}

/// The README's run command: `akm serve --role all` seeds demo data and
/// prints a signed `akm call` whose transcode returns target codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_call_returns_target_codes() {
    let dir = tempfile::tempdir().unwrap();
    let env = child_env(dir.path()).await;
    let mut child = crate::child::command("all", dir.path(), &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains(" call --app "))
        .expect("no akm call printed");
    // keep reading what it prints, so it never writes to a closed pipe
    std::thread::spawn(move || lines.for_each(drop));
    let _guard = Guard(child);
    // <exe> call --app ID --secret S POST URL '<body>'
    let (head, body) = line.split_once(" '").unwrap();
    let body = body.trim_end_matches('\'');
    let words: Vec<&str> = head.split_whitespace().collect();
    assert_eq!(words[1], "call");
    let out = std::process::Command::new(words[0])
        .args(&words[1..])
        .arg(body)
        .output()
        .unwrap();
    let answer: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
    let ok = answer.as_ref().is_some_and(|a| {
        a["errCode"] == "200" && a["data"].as_array().is_some_and(|d| !d.is_empty())
    });
    if !ok {
        drop(_guard);
        panic!(
            "{answer:?} {}\n--- akm serve log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            log.join().unwrap_or_default()
        );
    }
}
