//! The schema registry for analytics: with `AKM_SCHEMA_REGISTRY_URL`,
//! `akm.trade` is written in the Confluent wire format under subject
//! `<topic>-value`; `akm schemas apply` registers it BACKWARD; `serve`
//! refuses to start without the subject; the platform's own reader (the
//! stats consumer) reads it; a registry outage loses nothing; and on
//! Kafka, confluent-kafka's AvroDeserializer reads the topic.

use std::time::Duration;

use akm::bus::{BusConsumer, Topic};
use akm::events::TradeRecorded;
use akm::sim::RegistrySim;
use serde_json::Value;

use crate::helpers::*;

async fn registry() -> RegistrySim {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    RegistrySim::start(l).unwrap()
}

/// `akm schemas apply` against `url` for topic prefix `prefix`: its output.
fn schemas_apply(url: &str, prefix: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(["schemas", "apply"])
        .env("AKM_SCHEMA_REGISTRY_URL", url)
        .env("AKM_TOPIC_PREFIX", prefix)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The province's akm.trade records: every partition read from its start
/// to its end (assigned readers, no group).
async fn trade_records(app: &App) -> Vec<akm::bus::Record> {
    let bus = &app.province_node().bus;
    let name = bus.topics().name(Topic::Trade);
    let mut out = Vec::new();
    for (p, end) in bus
        .end_offsets(&name)
        .await
        .unwrap()
        .into_iter()
        .enumerate()
    {
        if end == 0 {
            continue;
        }
        let mut c = bus.assign_from(&name, p as u32, 0).await.unwrap();
        loop {
            let r = tokio::time::timeout(WAIT, c.next()).await.unwrap().unwrap();
            let last = r.offset + 1 >= end;
            out.push(r);
            if last {
                break;
            }
        }
    }
    out
}

/// The province's trade count of today (its stats consumer read them).
async fn trades_counted(app: &App, want: u64) -> u64 {
    let day = akm::domain::Day::of_ms(chrono::Utc::now().timestamp_millis());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, b) = app
            .call(
                "GET",
                &app.province(),
                &format!("/admin/v1/stats?from={day}&to={day}"),
                Vec::new(),
            )
            .await;
        let n: u64 = b["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["kind"] == "trade")
            .filter_map(|r| r["count"].as_u64())
            .sum();
        if n == want || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_registry_akm_trade_is_in_the_confluent_format_and_an_outage_loses_nothing() {
    let reg = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.schema_registry_url = Some(reg.url());
    let prefix = s.topic_prefix.clone();
    // no subject yet: start-up refuses, naming it and the fix
    apply_topics(&s).await;
    let Err(err) = akm::start(s, akm::Roles::All).await else {
        panic!("started without its registry subject");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("{prefix}akm.trade-value")) && text.contains("akm schemas apply"),
        "{text}"
    );
    let out = schemas_apply(&reg.url(), &prefix);
    assert!(
        out.contains(&format!(
            "{prefix}akm.trade-value: schema id 1, compatibility BACKWARD"
        )),
        "{out}"
    );
    assert_eq!(
        reg.subjects(),
        [(
            format!("{prefix}akm.trade-value"),
            Some("BACKWARD".to_string())
        )]
    );
    // idempotent
    assert_eq!(schemas_apply(&reg.url(), &prefix), out);
    let app = spawn_with(|s| {
        s.schema_registry_url = Some(reg.url());
        s.topic_prefix = prefix.clone();
    })
    .await;
    let (st, b) = app
        .post(&app.city(), "/api/v1/callback", &trade("RG-1"))
        .await;
    assert_eq!(st, 200, "{b}");
    // the registry goes down: trades go on (the ids were resolved at start)
    reg.set_down(true);
    let (st, b) = app
        .post(&app.city(), "/api/v1/callback", &trade("RG-2"))
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(app.push().wait_for(2, WAIT).await, "both pushed");
    let records = trade_records(&app).await;
    let ids = app.province_node().bus.topics().schema_ids().clone();
    let mut nos = Vec::new();
    for r in &records {
        assert_eq!(&r.payload[..5], &[0, 0, 0, 0, 1], "magic 0, schema id 1");
        let t: TradeRecorded = akm::events::decode_any(&r.payload, &ids).unwrap();
        nos.push(t.trade_no);
    }
    nos.sort();
    assert_eq!(nos, ["RG-1", "RG-2"]);
    // the platform's own reader of akm.trade takes the Confluent framing
    assert_eq!(trades_counted(&app, 2).await, 2);
    reg.set_down(false);
}

/// confluent-kafka's AvroDeserializer, with the registry, reads akm.trade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn confluent_kafka_s_avro_deserializer_reads_the_trade_topic() {
    let brokers =
        kafka().expect("Kafka-only test: set AKM_TEST_BUS=kafka and AKM_TEST_KAFKA_BROKERS");
    let python = std::env::var("AKM_TEST_PYTHON")
        .expect("AKM_TEST_PYTHON: the venv python with confluent-kafka");
    let reg = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = settings(dir.path()).topic_prefix;
    schemas_apply(&reg.url(), &prefix);
    let app = spawn_with(|s| {
        s.schema_registry_url = Some(reg.url());
        s.topic_prefix = prefix.clone();
    })
    .await;
    for no in ["CF-1", "CF-2", "CF-3"] {
        let (st, b) = app.post(&app.city(), "/api/v1/callback", &trade(no)).await;
        assert_eq!(st, 200, "{b}");
    }
    assert!(app.push().wait_for(3, WAIT).await);
    let topic = app.province_node().bus.topics().name(Topic::Trade);
    let (python, url) = (python.clone(), reg.url());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/analytics/read_trade_confluent.py"
            ))
            .args([
                "--brokers",
                &brokers,
                "--topic",
                &topic,
                "--registry",
                &url,
                "--expect",
                "3",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut nos: Vec<&str> = rows
        .iter()
        .map(|r| r["tradeNo"].as_str().unwrap())
        .collect();
    nos.sort();
    assert_eq!(nos, ["CF-1", "CF-2", "CF-3"]);
    for r in &rows {
        assert_eq!(
            (r["cityNo"].as_str(), r["schemaId"].as_u64()),
            (Some("340100000000"), Some(1))
        );
        assert_eq!(r["subjectId"].as_str().unwrap().len(), 64);
    }
}
