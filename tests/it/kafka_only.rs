//! What only the Kafka backend has: topics as code, the start-up check,
//! publish failing when the broker is gone, several ingress instances of
//! one role on one cluster, and province analytics read by a non-Rust
//! client. Each test is `#[ignore]`d, so the embedded run reports it as
//! ignored; the Kafka run includes them and a missing broker fails them.

use std::time::Duration;

use akm::bus::{Bus, BusBackend, KafkaBus, KafkaOptions, Message, Topics};
use akm::Roles;
use serde_json::json;

use crate::helpers::*;

/// The broker under test; these tests make no sense without one.
fn kafka_brokers() -> String {
    kafka().expect("Kafka-only test: set AKM_TEST_BUS=kafka and AKM_TEST_KAFKA_BROKERS")
}

#[tokio::test]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn topics_apply_is_idempotent_and_serve_names_missing_topics() {
    let brokers = kafka_brokers();
    let prefix = format!("apply{}.", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let topics = Topics::new(&prefix).unwrap();
    let opts = KafkaOptions {
        brokers,
        fetch_wait_ms: 10,
        message_timeout_ms: 5000,
        properties: vec![],
    };
    let err = Bus::kafka(opts.clone(), topics.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{prefix}akm.transcode.request")),
        "{err}"
    );
    assert!(err.contains("akm topics apply"), "{err}");
    let bus = KafkaBus::connect(opts.clone(), topics.clone())
        .await
        .unwrap();
    let first = bus.apply().await.unwrap();
    assert!(first.iter().all(|l| l.starts_with("created")), "{first:?}");
    let second = bus.apply().await.unwrap();
    assert_eq!(second.len(), topics.declared().len());
    assert!(second.iter().all(|l| l.starts_with("exists")), "{second:?}");
    assert!(Bus::kafka(opts, topics).await.is_ok());
}

#[tokio::test]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn publish_fails_cleanly_when_the_broker_is_gone() {
    kafka_brokers();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bus = KafkaBus::connect(
        KafkaOptions {
            brokers: dead.to_string(),
            fetch_wait_ms: 10,
            message_timeout_ms: 1500,
            properties: vec![],
        },
        Topics::new("").unwrap(),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let r = bus
        .publish(Message::new("akm.trade", b"k".to_vec(), b"v".to_vec()))
        .await;
    assert!(r.is_err(), "publish to a dead broker succeeded");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn two_ingress_instances_of_one_city_get_their_own_replies() {
    kafka_brokers();
    let app = spawn().await;
    // a second city instance on the same cluster and topics, owning another reply partition
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.topic_prefix = app.city_node().bus.topics().prefix().to_string();
    s.province_url = Some(app.province());
    s.reply_partition = Some((app.city_node().reply_partition + 1) % 8);
    let twin = start(s, Roles::City).await;
    let twin_url = twin.city_url().unwrap();
    // the terminal app registered at the first instance reached the twin
    // (akm.reference, the city's scope): one terminal signs for both
    let terminal = app.signers.get("terminal").unwrap().clone();
    let terminals = [terminal.clone(), terminal];
    let urls = [app.city(), twin_url];
    let mut calls = Vec::new();
    for i in 0..6 {
        let url = format!("{}/api/v1/transcode", urls[i % 2]);
        let qr = app.qr(ZHANG).await;
        let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "sceneCode": "01002"});
        let (app, terminal) = (&app, terminals[i % 2].clone());
        calls.push(async move {
            app.send(signed(
                &app.http,
                Some(&terminal),
                &app.clock,
                "POST",
                &url,
                body.to_string().into_bytes(),
            ))
            .await
        });
    }
    for (s, b) in futures::future::join_all(calls).await {
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"][0]["targetId"], "EHC-0001");
    }
    assert!(app.city_node().pending.is_empty());
    twin.shutdown().await;
}

/// Province analytics: Python (kafka-python + fastavro) reads akm.trade and
/// decodes each record from `schemas/TradeRecorded.avsc` alone.
#[tokio::test]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn a_python_client_reads_the_trade_topic_from_the_schema_files() {
    let brokers = kafka_brokers();
    let python = std::env::var("AKM_TEST_PYTHON")
        .expect("AKM_TEST_PYTHON: the venv python with kafka-python and fastavro");
    let app = spawn().await;
    for no in ["PY-1", "PY-2", "PY-3"] {
        let (s, _) = app.post(&app.city(), "/api/v1/callback", &trade(no)).await;
        assert_eq!(s, 200);
    }
    assert!(app.push().wait_for(3, WAIT).await);
    let topic = app
        .province_node()
        .bus
        .topics()
        .name(akm::bus::Topic::Trade);
    let out = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/analytics/read_trade.py"
        ))
        .args(["--brokers", &brokers, "--topic", &topic, "--expect", "3"])
        .args([
            "--schema",
            concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/TradeRecorded.avsc"),
        ])
        .args([
            "--forbid",
            ZHANG,
            "--forbid",
            "张三",
            "--forbid",
            "15665439684",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut nos: Vec<&str> = rows
        .iter()
        .map(|r| r["tradeNo"].as_str().unwrap())
        .collect();
    nos.sort();
    assert_eq!(nos, ["PY-1", "PY-2", "PY-3"]);
    for r in &rows {
        assert_eq!(r["cityNo"], "340100000000");
        assert_eq!(r["targetType"], HEALTH);
        assert_eq!(r["subjectId"].as_str().unwrap().len(), 64);
    }
}
