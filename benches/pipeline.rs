//! Throughput and latency of the two hot paths on the embedded platform
//! (role `all`, real listeners, simulators): terminal transcode
//! (request-reply over the bus + card system) and card-system callbacks
//! (durable acceptance), with 32 concurrent clients, every request signed
//! as a caller signs it (SPEC §9).
//!
//!     cargo bench --bench pipeline            # 2000 requests per path
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a
//! 20-request smoke run, so the benchmark keeps working.

use std::time::{Duration, Instant};

use akm::config::{Secret, Settings};
use akm::domain::app::{AppId, AppKind, Scopes};
use akm::service::apps::Apps;
use akm::signing::{SignMethod, Signer};
use akm::Roles;
use futures::stream::{self, StreamExt};
use serde_json::json;

const ID: &str = "340102199003073238";
const OPS_SECRET: &str = "bench-operator-secret-0123456789abcdef";

/// A request signed as `signer` (SPEC §9), as every caller sends it.
fn signed(
    http: &reqwest::Client,
    signer: &Signer,
    method: reqwest::Method,
    url: &str,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    let bytes = body.to_string().into_bytes();
    let now = chrono::Utc::now().timestamp_millis();
    let mut req = http
        .request(method.clone(), url)
        .header("Content-Type", "application/json");
    for (k, v) in signer.headers_for_url(method.as_str(), url, &bytes, now) {
        req = req.header(k, v);
    }
    req.body(bytes)
}

/// Register an app with a known secret directly in a node's store.
async fn app(store: &akm::store::Store, id: &str, kind: AppKind) -> Signer {
    let secret = akm::service::apps::generate_secret();
    Apps {
        store: store.clone(),
        clock: akm::clock::system(),
    }
    .ensure(
        &AppId::parse(id).expect("app id"),
        kind,
        Scopes::default(),
        &secret,
    )
    .await
    .expect("app");
    Signer::new(id, secret, SignMethod::HmacSha256)
}

fn report(what: &str, mut lat: Vec<Duration>, total: Duration) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{what:<10} n={:<5} {:>8.0} req/s  p50 {:>7.2?}  p99 {:>7.2?}  max {:>7.2?}",
        lat.len(),
        lat.len() as f64 / total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 2000 } else { 20 };
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        province_listen: "127.0.0.1:0".into(),
        city_listen: "127.0.0.1:0".into(),
        sim_card_listen: "127.0.0.1:0".into(),
        sim_push_listen: "127.0.0.1:0".into(),
        demo: Some(false),
        admin_app_id: Some("bench-ops".into()),
        admin_app_secret: Some(Secret::new(OPS_SECRET)),
        ..Settings::default()
    };
    let p = akm::start(settings, Roles::All).await.expect("start");
    let (province, city) = (
        p.province_url().expect("province"),
        p.city_url().expect("city"),
    );
    let card = p.card_sim.as_ref().expect("card sim");
    let http = reqwest::Client::new();
    let ops = Signer::new("bench-ops", OPS_SECRET, SignMethod::HmacSha256);
    let city_store = &p.city.as_ref().expect("city").store;
    let terminal = app(city_store, "bench-terminal", AppKind::Terminal).await;
    let card_system = app(city_store, "bench-card", AppKind::CardSystem).await;
    let put = |url: String, body: serde_json::Value| {
        let (http, ops) = (http.clone(), ops.clone());
        async move {
            assert!(signed(&http, &ops, reqwest::Method::PUT, &url, &body)
                .send()
                .await
                .expect("put")
                .status()
                .is_success())
        }
    };
    put(format!("{province}/admin/v1/transcode-configs"), json!({"belongarea": "340100", "targetType": "3401002", "targetName": "合肥电子健康卡", "targetUrl": card.url("3401002"), "sceneCode": ""})).await;
    put(format!("{province}/admin/v1/residents"), json!({"idcardNo": ID, "name": "张三", "userPhone": "15665439684", "healthLevel": "1", "dataSource": "1", "universalAuth": true})).await;
    card.add_card(ID, "3401002", "EHC-0001", "");
    let qr: serde_json::Value = signed(
        &http,
        &ops,
        reqwest::Method::POST,
        &format!("{province}/admin/v1/qrcodes"),
        &json!({"idcardNo": ID, "ttlSeconds": 3600}),
    )
    .send()
    .await
    .expect("qr")
    .json()
    .await
    .expect("qr json");
    let qr = qr["data"]["qrCodeUrl"]
        .as_str()
        .expect("qrCodeUrl")
        .to_string();

    let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": "3401002"});
    let started = Instant::now();
    let lat: Vec<Duration> = stream::iter(0..n)
        .map(|_| {
            let (http, url, body, terminal) = (
                http.clone(),
                format!("{city}/api/v1/transcode"),
                body.clone(),
                terminal.clone(),
            );
            async move {
                let t = Instant::now();
                let r = signed(&http, &terminal, reqwest::Method::POST, &url, &body)
                    .send()
                    .await
                    .expect("transcode");
                assert!(
                    r.status().is_success(),
                    "{}",
                    r.text().await.unwrap_or_default()
                );
                t.elapsed()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    report("transcode", lat, started.elapsed());

    let started = Instant::now();
    let lat: Vec<Duration> = stream::iter(0..n)
        .map(|i| {
            let (http, url, card_system) = (
                http.clone(),
                format!("{city}/api/v1/callback"),
                card_system.clone(),
            );
            async move {
                let body = json!({"cityNo": "340100", "name": "张三", "idcardNo": ID, "targetType": "3401002", "targetId": "EHC-0001", "tradeTime": "20200628193425", "tradeNo": format!("B-{i}"), "msg": "交易成功", "tradeState": "1"});
                let t = Instant::now();
                let r = signed(&http, &card_system, reqwest::Method::POST, &url, &body)
                    .send()
                    .await
                    .expect("callback");
                assert!(r.status().is_success());
                t.elapsed()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    report("callback", lat, started.elapsed());
    let push = p.push_sim.as_ref().expect("push sim");
    let t = Instant::now();
    assert!(
        push.wait_for(n, Duration::from_secs(120)).await,
        "not every trade was pushed"
    );
    println!(
        "all {n} pushes delivered {:.2?} after the last callback was accepted",
        t.elapsed()
    );
    p.shutdown().await;
}
