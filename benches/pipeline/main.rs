//! Throughput and latency of the hot paths on the embedded platform (role
//! `all`, real listeners, simulators), driven by the load generator
//! `akm-load` in a process of its own, every request signed as a caller
//! signs it (SPEC §9): the floor (`/livez`), terminal transcode with the
//! config at the province only and with it at the city, and card-system
//! callbacks (durable acceptance) while forwarding and pushes run; then the
//! time from the last accepted callback to its push, and the peak RSS.
//! Each row is the median of several runs (warm-up, then a fixed time),
//! with its ratio to the floor and to the direct chain (the baseline: the
//! same province decode and card generate as one HTTP service, no bus,
//! its callers signed and checked as the platform's terminals are).
//! Each transcode row runs in rounds with the baseline (a baseline run,
//! then a transcode run, and again), so both see the same moments of the
//! shared machine; the baseline's row is the median of all its runs.
//! With `AKM_BENCH_KAFKA_BROKERS` set, it also measures transcode on a
//! Kafka bus (a second platform, role `all`, topics under a fresh prefix),
//! at 32 connections and at one. That platform takes the Kafka client
//! settings from the environment as a node does (`AKM_KAFKA_FETCH_WAIT_MS`,
//! `AKM_KAFKA_PROPERTIES`).
//!
//!     cargo bench --bench pipeline            # 3 runs x 10 s per row
//!     AKM_BENCH_KAFKA_BROKERS=127.0.0.1:9092 cargo bench --bench pipeline
//!     AKM_BENCH_RUNS=1 AKM_BENCH_SECONDS=5 cargo bench --bench pipeline  # a quick look
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a short
//! smoke run, so the benchmark keeps working.

mod deploy;
mod direct;
mod run;

use std::time::{Duration, Instant};

use akm::config::{BusKind, Settings};
use akm::domain::app::AppKind;
use akm::signing::{SignMethod, Signer};

use deploy::{deploy, Deployed};

// the allocator of the `akm` binary, so the platform measured here is the
// one deployed
akm::allocator!();
use run::{measure, paired_ratio, peak_rss_mib, rounds, row, Plan, Row, Spec};

/// The Kafka rows: a platform on the broker `brokers`, config at the city;
/// and the client settings they ran with.
async fn kafka_rows(plan: Plan, brokers: String) -> (Vec<Row>, String) {
    let prefix = format!("bench{}.", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    // the Kafka client settings a deployed node would take from its
    // environment (`AKM_KAFKA_FETCH_WAIT_MS`, `AKM_KAFKA_PROPERTIES`)
    let env = Settings::load(None).expect("AKM_* settings");
    let settings = Settings {
        bus: BusKind::Kafka,
        kafka_brokers: brokers,
        topic_prefix: prefix.clone(),
        kafka_fetch_wait: env.kafka_fetch_wait,
        kafka_properties: env.kafka_properties,
        ..Settings::default()
    };
    let described = format!(
        "broker {}, fetch.wait.max.ms {} (AKM_KAFKA_FETCH_WAIT_MS), passed through: {:?} (AKM_KAFKA_PROPERTIES)",
        settings.kafka_brokers,
        settings.kafka_fetch_wait.as_millis(),
        settings.kafka_config().unwrap_or_default()
    );
    let topics = akm::bus::Topics::new(&prefix).expect("topics");
    akm::bus::KafkaBus::connect(akm::bus::KafkaOptions::from_settings(&settings), topics)
        .await
        .expect("kafka")
        .apply()
        .await
        .expect("apply topics");
    let d = deploy(settings).await;
    d.config_at_city().await;
    let url = format!("{}/api/v1/transcode", d.city);
    let rows = tokio::task::block_in_place(|| {
        let args = |_| Deployed::signed_post(&d.terminal, d.transcode.clone());
        vec![
            measure(plan, "transcode on Kafka, config at the city", &url, args),
            measure(
                Plan {
                    connections: 1,
                    ..plan
                },
                "transcode on Kafka, one connection",
                &url,
                args,
            ),
        ]
    });
    d.p.shutdown().await;
    (rows, described)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full {
        let env = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        Plan {
            warmup_ms: 2000,
            duration_ms: env("AKM_BENCH_SECONDS", 10) * 1000,
            runs: env("AKM_BENCH_RUNS", 3) as usize,
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
    let d = deploy(Settings::default()).await;
    let province_store = &d.p.province.as_ref().expect("province").store;
    let (city_id, city_secret) = deploy::app(province_store, "bench-city", AppKind::City).await;
    let card = d.p.card_sim.as_ref().expect("card sim");
    let city_store = d.p.city.as_ref().expect("city").store.clone();
    let direct = direct::direct_chain(direct::Direct {
        gate: akm::service::gate::Gate::new(city_store, akm::clock::system(), true, Vec::new()),
        province: akm::clients::province::ProvinceClient::new(
            akm::clients::http_client(None).expect("http client"),
            &d.province,
            Some(akm::clients::Signing {
                signer: Signer::new(city_id, city_secret, SignMethod::HmacSha256),
                clock: akm::clock::system(),
            }),
            akm::clients::Alerts::default(),
            akm::metrics::Metrics::new(),
        ),
        http: akm::clients::http_client(None).expect("http client"),
        card_url: card.url("3401002"),
    })
    .await;
    let city = d.city.clone();
    let transcode = d.transcode.clone();
    // the load generator runs in its own process: hand the runtime back
    let mut rows = tokio::task::block_in_place(|| {
        let signed = |_| Deployed::signed_post(&d.terminal, transcode.clone());
        let floor = measure(plan, "floor (/livez)", &format!("{city}/livez"), |_| vec![]);
        let baseline = || Spec {
            name: "direct chain (no bus), the baseline",
            url: direct.clone(),
            extra: Box::new(signed),
        };
        let url = format!("{city}/api/v1/transcode");
        let transcode_row = |name| Spec {
            name,
            url: url.clone(),
            extra: Box::new(signed),
        };
        // each transcode row in rounds with the baseline, which is the
        // median of all its runs
        let [mut direct_runs, at_province]: [_; 2] = rounds(
            plan,
            &[
                baseline(),
                transcode_row("transcode, config at the province"),
            ],
        )
        .try_into()
        .expect("two rows");
        tokio::runtime::Handle::current().block_on(d.config_at_city());
        let [more_direct, local]: [_; 2] = rounds(
            plan,
            &[baseline(), transcode_row("transcode, config at the city")],
        )
        .try_into()
        .expect("two rows");
        let paired = |runs: Vec<serde_json::Value>, base: &[serde_json::Value], name| Row {
            paired: paired_ratio(&runs, base),
            ..row(name, runs)
        };
        let at_province = paired(
            at_province,
            &direct_runs,
            "transcode, config at the province",
        );
        let local = paired(local, &more_direct, "transcode, config at the city");
        direct_runs.extend(more_direct);
        let callbacks = measure(
            plan,
            "durable callbacks",
            &format!("{city}/api/v1/callback"),
            |run| {
                let body = serde_json::json!({"cityNo": "340100", "name": "张三", "idcardNo": deploy::ID, "targetType": "3401002", "targetId": "EHC-0001", "tradeTime": "20200628193425", "tradeNo": format!("B{run}-{{seq}}"), "msg": "交易成功", "tradeState": "1"});
                Deployed::signed_post(&d.card_system, body.to_string())
            },
        );
        vec![
            floor,
            row("direct chain (no bus), the baseline", direct_runs),
            at_province,
            local,
            callbacks,
        ]
    });
    let accepted = rows[4].ok_total as usize;
    let push = d.p.push_sim.as_ref().expect("push sim");
    let t = Instant::now();
    assert!(
        push.wait_for(accepted, Duration::from_secs(300)).await,
        "not every trade was pushed"
    );
    let drain = t.elapsed();
    let rss = peak_rss_mib();
    d.p.shutdown().await;
    let mut kafka = None;
    if let Ok(brokers) = std::env::var("AKM_BENCH_KAFKA_BROKERS") {
        let (kafka_rows, settings) = kafka_rows(plan, brokers).await;
        rows.extend(kafka_rows);
        kafka = Some(settings);
    }
    print_table(&rows);
    if let Some(settings) = kafka {
        println!("\nKafka rows: {settings}");
    }
    println!("\n{accepted} accepted callbacks all pushed {drain:.2?} after the last was accepted");
    println!("peak RSS of the embedded platform (and this driver): {rss:.0} MiB");
    println!(
        "runs: {} x ({} ms warm-up + {} ms), {} connections, median run by rate",
        plan.runs, plan.warmup_ms, plan.duration_ms, plan.connections
    );
    assert!(
        rows.iter().all(|r| r.failed == 0),
        "requests failed: {rows:?}"
    );
}

fn print_table(rows: &[Row]) {
    let floor = rows[0].rps.max(1.0);
    let direct = rows[1].rps.max(1.0);
    println!(
        "\n{:<40} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7}",
        "path", "req/s", "p50 ms", "p99 ms", "x floor", "x direct", "x paired", "failed"
    );
    for r in rows {
        let paired = r.paired.map_or("-".to_string(), |p| format!("{p:.2}"));
        println!(
            "{:<40} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>8} {:>7}",
            r.name,
            r.rps,
            r.p50,
            r.p99,
            r.rps / floor,
            r.rps / direct,
            paired,
            r.failed
        );
    }
    println!(
        "x paired: the median over rounds of the row's rate over the baseline's in the same round"
    );
}
