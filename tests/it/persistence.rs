//! Data and accepted trades survive `kill -9` of the whole binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use akm::sim::PushSim;
use serde_json::json;

use akm::signing::{SignMethod, Signer};

use crate::helpers::{
    operator, register_app, signed, trade, OPERATOR, OPERATOR_SECRET, WAIT, ZHANG,
};

/// POST JSON signed by `signer` and read the JSON answer.
async fn post_json(
    http: &reqwest::Client,
    signer: &Signer,
    url: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    signed(
        http,
        Some(signer),
        &akm::clock::system(),
        "POST",
        url,
        body.to_string().into_bytes(),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

/// Register a card-system app at `city` as the test operator.
async fn card_app(http: &reqwest::Client, city: &str) -> Signer {
    let secret = register_app(
        http,
        &akm::clock::system(),
        city,
        "t-card",
        "card-system",
        json!({}),
    )
    .await;
    Signer::new("t-card", secret, SignMethod::HmacSha256)
}

/// A running `akm serve --role all` and the listeners it reported.
struct Node {
    child: Child,
    province: String,
    city: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bus settings of the test run, for a child `akm` process (its topics applied).
async fn bus_env(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let s = crate::helpers::settings(dir);
    crate::helpers::apply_topics(&s).await;
    vec![
        ("AKM_ADMIN_APP_ID", OPERATOR.to_string()),
        ("AKM_ADMIN_APP_SECRET", OPERATOR_SECRET.to_string()),
        ("AKM_BUS", s.bus.as_str().to_string()),
        ("AKM_KAFKA_BROKERS", s.kafka_brokers),
        ("AKM_TOPIC_PREFIX", s.topic_prefix),
    ]
}

/// `akm serve --role all` on `dir` with the test run's bus settings. Every
/// listener binds port 0 itself and the child reports the address it got:
/// no port is reserved and released for it.
fn serve_all(dir: &std::path::Path, env: &[(&'static str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_akm"));
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["serve", "--role", "all", "--data-dir"])
        .arg(dir);
    for name in [
        "AKM_PROVINCE_LISTEN",
        "AKM_CITY_LISTEN",
        "AKM_SIM_CARD_LISTEN",
        "AKM_SIM_PUSH_LISTEN",
    ] {
        cmd.env(name, "127.0.0.1:0");
    }
    cmd
}

/// The `addr=` of a `listening` log line.
fn listening_addr(line: &str) -> Option<String> {
    let at = line.find("addr=")? + "addr=".len();
    let addr: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    Some(format!("http://{}", addr.trim_matches('"')))
}

/// Start `akm serve --role all` and wait for its two "listening" lines and
/// the final "platform ready" (demo data seeded and flushed).
fn serve(dir: &std::path::Path, push_url: &str, env: &[(&'static str, String)]) -> Node {
    let mut child = serve_all(dir, env)
        .env("AKM_PUSH_URL", push_url)
        .env("AKM_RETRY_MAX_MS", "200")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let (mut province, mut city) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("listening") {
            if line.contains("province") {
                province = listening_addr(&line);
            } else if line.contains("city") {
                city = listening_addr(&line);
            }
        }
        if line.contains("platform ready") {
            break;
        }
    }
    // keep draining its log so it never blocks on a full pipe
    std::thread::spawn(move || lines.for_each(drop));
    match (province, city) {
        (Some(province), Some(city)) => Node {
            child,
            province,
            city,
        },
        _ => panic!("akm did not come up"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_accepted_trades_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let push = PushSim::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap();
    push.fail_next(u32::MAX, 503); // nothing gets through before the kill
    let http = reqwest::Client::new();
    let env = bus_env(dir.path()).await;
    let mut node = serve(dir.path(), &push.url(), &env);
    let city = node.city.clone();
    let card = card_app(&http, &city).await;
    let r = post_json(
        &http,
        &card,
        &format!("{city}/api/v1/callback"),
        &trade("K-1"),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    node.child.kill().unwrap(); // SIGKILL
    node.child.wait().unwrap();
    drop(node);

    push.fail_next(0, 503);
    let node = serve(dir.path(), &push.url(), &env);
    let (province, city) = (node.province.clone(), node.city.clone());
    assert!(push.wait_for(1, WAIT).await, "the accepted trade was lost");
    assert_eq!(push.pushes()[0]["tradeNo"], "K-1");
    // demo data (seeded on the first start) is still there: residents and configs
    let r = post_json(
        &http,
        &operator(),
        &format!("{province}/admin/v1/qrcodes"),
        &json!({"idcardNo": ZHANG}),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    // the card system's app survived too
    let r = post_json(
        &http,
        &card,
        &format!("{city}/api/v1/transcode-config"),
        &json!({"cityNo": "340100", "targetType": "3401002"}),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    // and the trade is not taken twice
    let r = post_json(
        &http,
        &card,
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
    let env = bus_env(dir.path()).await;
    let mut child = serve_all(dir.path(), &env)
        .env("NO_COLOR", "1")
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
    let _guard = Node {
        child,
        province: String::new(),
        city: String::new(),
    };
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
