//! Throughput and latency of the hot paths on the embedded platform (role
//! `all`, real listeners, simulators), driven by the load generator
//! `akm-load` in a process of its own, every request signed as a caller
//! signs it (SPEC §9): the floor (`/livez`), terminal transcode with the
//! config at the province only and with it at the city, and card-system
//! callbacks (durable acceptance) while forwarding and pushes run; then the
//! time from the last accepted callback to its push, and the peak RSS.
//! Each row is the median of several runs (warm-up, then a fixed time),
//! with its ratio to the floor.
//!
//!     cargo bench --bench pipeline            # 3 runs x 10 s per row
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a short
//! smoke run, so the benchmark keeps working.

use std::time::{Duration, Instant};

use serde_json::Value;

use akm::config::{Secret, Settings};
use akm::domain::app::{AppId, AppKind, Scopes};
use akm::service::apps::Apps;
use akm::signing::{SignMethod, Signer};
use akm::Roles;
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

/// Register an app with a known secret directly in a node's store; its
/// id and secret.
async fn app(store: &akm::store::Store, id: &str, kind: AppKind) -> (String, String) {
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
    (id.to_string(), secret)
}

/// What the direct chain needs: the province's client and the card system.
struct Direct {
    province: akm::clients::province::ProvinceClient,
    http: reqwest::Client,
    card_url: String,
}

/// The direct synchronous chain, the baseline: the province's decode and
/// the card system's generate over HTTP, with the platform's own clients
/// and HTTP settings, and no bus. Unsigned at its own edge; answers the
/// transcode envelope.
async fn direct_chain(d: Direct) -> String {
    async fn handle(
        axum::extract::State(d): axum::extract::State<std::sync::Arc<Direct>>,
        body: axum::body::Bytes,
    ) -> axum::Json<Value> {
        let fail = |m: String| axum::Json(json!({"flag": "500", "errCode": "5000", "errMsg": m}));
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return fail("body".into());
        };
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let (Ok(city), Ok(token), Ok(target)) = (
            akm::domain::city::CityNo::parse(&field("cityNo")),
            akm::domain::qr::QrToken::from_url(&field("qrCodeUrl")),
            akm::domain::target::TargetType::parse(&field("targetType")),
        ) else {
            return fail("fields".into());
        };
        let timeout = Duration::from_secs(3);
        let who = match d
            .province
            .decode(&city, &token, &target, None, timeout)
            .await
        {
            Ok(who) => who,
            Err(e) => return fail(format!("decode: {e}")),
        };
        let req = akm::clients::card::GenerateRequest {
            city_no: city.as_str(),
            target_type: target.as_str(),
            scene_code: "",
            name: who.name.expose(),
            idcard_no: who.idcard_no.expose(),
            user_phone: who.user_phone.expose(),
            target_object: &who.target_object,
        };
        match akm::clients::card::generate(&d.http, &d.card_url, &req, timeout).await {
            Ok(codes) => axum::Json(
                json!({"flag": "200", "errCode": "200", "errMsg": "成功", "data": codes}),
            ),
            Err(e) => fail(format!("generate: {e}")),
        }
    }
    let router = axum::Router::new()
        .route("/direct", axum::routing::post(handle))
        .with_state(std::sync::Arc::new(d));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/direct")
}

/// How long and how often each row runs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    warmup_ms: u64,
    duration_ms: u64,
    runs: usize,
    connections: usize,
}

/// One `akm-load` run against `url`; its JSON report.
fn load(plan: Plan, url: &str, extra: &[String]) -> Value {
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
struct Row {
    name: &'static str,
    rps: f64,
    p50: f64,
    p99: f64,
    failed: u64,
    /// Successful answers of every run, warm-ups included.
    ok_total: u64,
}

fn measure(plan: Plan, name: &'static str, url: &str, extra: impl Fn(usize) -> Vec<String>) -> Row {
    let mut runs: Vec<Value> = (0..plan.runs).map(|r| load(plan, url, &extra(r))).collect();
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
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full {
        Plan {
            warmup_ms: 2000,
            duration_ms: 10_000,
            runs: 3,
            connections: 32,
        }
    } else {
        Plan {
            warmup_ms: 100,
            duration_ms: 300,
            runs: 1,
            connections: 4,
        }
    };
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
    let config = json!({"belongarea": "340100", "targetType": "3401002", "targetName": "合肥电子健康卡", "targetUrl": card.url("3401002"), "sceneCode": ""});
    put(
        format!("{province}/admin/v1/transcode-configs"),
        config.clone(),
    )
    .await;
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
    let signer_args = |(id, secret): &(String, String), body: String| {
        vec![
            "--method".to_string(),
            "POST".into(),
            "--app".into(),
            id.clone(),
            "--secret".into(),
            secret.clone(),
            "--body".into(),
            body,
        ]
    };
    let province_store = &p.province.as_ref().expect("province").store;
    let (city_id, city_secret) = app(province_store, "bench-city", AppKind::City).await;
    let direct = direct_chain(Direct {
        province: akm::clients::province::ProvinceClient::new(
            akm::clients::http_client(None).expect("http client"),
            &province,
            Some(akm::clients::Signing {
                signer: Signer::new(city_id, city_secret, SignMethod::HmacSha256),
                clock: akm::clock::system(),
            }),
            akm::clients::Alerts::default(),
        ),
        http: akm::clients::http_client(None).expect("http client"),
        card_url: card.url("3401002"),
    })
    .await;
    let transcode =
        json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": "3401002"}).to_string();
    // the load generator runs in its own process: hand the runtime back
    let rows = tokio::task::block_in_place(|| {
        let floor = measure(plan, "floor (/livez)", &format!("{city}/livez"), |_| vec![]);
        let baseline = measure(plan, "direct chain (no bus), the baseline", &direct, |_| {
            vec![
                "--method".into(),
                "POST".into(),
                "--body".into(),
                transcode.clone(),
            ]
        });
        let at_province = measure(
            plan,
            "transcode, config at the province",
            &format!("{city}/api/v1/transcode"),
            |_| signer_args(&terminal, transcode.clone()),
        );
        tokio::runtime::Handle::current().block_on(put(
            format!("{city}/admin/v1/transcode-configs"),
            config.clone(),
        ));
        let local = measure(
            plan,
            "transcode, config at the city",
            &format!("{city}/api/v1/transcode"),
            |_| signer_args(&terminal, transcode.clone()),
        );
        let callbacks = measure(
            plan,
            "durable callbacks",
            &format!("{city}/api/v1/callback"),
            |run| {
                let body = json!({"cityNo": "340100", "name": "张三", "idcardNo": ID, "targetType": "3401002", "targetId": "EHC-0001", "tradeTime": "20200628193425", "tradeNo": format!("B{run}-{{seq}}"), "msg": "交易成功", "tradeState": "1"});
                signer_args(&card_system, body.to_string())
            },
        );
        vec![floor, baseline, at_province, local, callbacks]
    });
    let accepted = rows[4].ok_total as usize;
    let push = p.push_sim.as_ref().expect("push sim");
    let t = Instant::now();
    assert!(
        push.wait_for(accepted, Duration::from_secs(300)).await,
        "not every trade was pushed"
    );
    let drain = t.elapsed();
    let floor = rows[0].rps.max(1.0);
    println!(
        "\n{:<36} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "path", "req/s", "p50 ms", "p99 ms", "x floor", "x direct", "failed"
    );
    let direct_rps = rows[1].rps.max(1.0);
    for r in &rows {
        println!(
            "{:<36} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>7}",
            r.name,
            r.rps,
            r.p50,
            r.p99,
            r.rps / floor,
            r.rps / direct_rps,
            r.failed
        );
    }
    println!("\n{accepted} accepted callbacks all pushed {drain:.2?} after the last was accepted");
    println!(
        "peak RSS of the platform (and this driver): {:.0} MiB",
        peak_rss_mib()
    );
    println!(
        "runs: {} x ({} ms warm-up + {} ms), {} connections, median run by rate",
        plan.runs, plan.warmup_ms, plan.duration_ms, plan.connections
    );
    assert!(
        rows.iter().all(|r| r.failed == 0),
        "requests failed: {rows:?}"
    );
    p.shutdown().await;
}
