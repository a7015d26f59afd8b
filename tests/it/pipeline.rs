//! The trade pipeline: city callback -> akm.trade.reported -> forwarder ->
//! province callback -> akm.trade + akm.notify -> notifier -> push gateway.

use std::time::Duration;

use akm::bus::{BusConsumer, Topic};
use akm::events::{self, TradeRecorded};
use akm::sim::PushSim;
use akm::Roles;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_city_callback_reaches_the_resident_once() {
    let app = spawn().await;
    let (s, b) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-1"))
        .await;
    assert_eq!((s, b["errCode"].as_str()), (200, Some("200")), "{b}");
    assert!(app.push().wait_for(1, WAIT).await, "no push arrived");
    let pushes = app.push().pushes();
    let p = &pushes[0];
    assert_eq!(p["tradeNo"], "T-1");
    assert_eq!(p["idcardNo"], ZHANG);
    assert_eq!(p["userPhone"], "15665439684");
    assert_eq!(p["cityNo"], "340100000000");
    assert_eq!(p["targetType"], HEALTH);
    assert_eq!(p["tradeState"], "1");
    assert_eq!(p["tradeTime"], "20200628193425");
    assert_eq!(
        p["content"],
        "您于2020-06-28 19:34:25使用安康码在合肥电子健康卡完成交易：交易成功"
    );

    // the same report again, at the city and at the province: success, nothing new
    let city_topic = app.city_node().bus.topics().name(Topic::TradeReported);
    let notify_topic = app.province_node().bus.topics().name(Topic::Notify);
    let reported = app.city_node().bus.count(&city_topic).await.unwrap();
    let notified = app.province_node().bus.count(&notify_topic).await.unwrap();
    assert_eq!((reported, notified), (1, 1));
    // the callbacks' changelog: on Kafka each node's acceptance is on it
    // before the node answers; the embedded bus's one instance keeps the
    // state in its store, and the topic holds only the barrier each node
    // wrote per partition when it started
    for node in [app.city_node(), app.province_node()] {
        let topic = node.bus.topics().name(Topic::CallbackState);
        let barriers = u64::from(node.bus.partitions(&topic).unwrap());
        let n = node.bus.count(&topic).await.unwrap();
        if node.bus.backend() == "kafka" {
            assert!(n > barriers, "{n} records on {topic}");
        } else {
            assert_eq!(n, barriers, "{topic} holds more than the barriers");
        }
    }
    for base in [app.city(), app.province()] {
        let (s, b) = app.post(&base, "/api/v1/callback", &trade("T-1")).await;
        assert_eq!(s, 200, "{b}");
        assert!(b["errMsg"].as_str().unwrap().contains("重复"), "{b}");
    }
    assert_eq!(
        app.city_node().store.outbox_len() + app.province_node().store.outbox_len(),
        0
    );
    assert_eq!(app.city_node().bus.count(&city_topic).await.unwrap(), 1);
    assert_eq!(
        app.province_node().bus.count(&notify_topic).await.unwrap(),
        1
    );

    // a second trade is pushed after the first, and only once
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-2"))
        .await;
    assert_eq!(s, 200);
    assert!(app.push().wait_for(2, WAIT).await);
    let nos: Vec<String> = app
        .push()
        .pushes()
        .iter()
        .map(|p| p["tradeNo"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nos, ["T-1", "T-2"]);
}

#[tokio::test]
async fn same_trade_number_with_other_content_is_4007() {
    let app = spawn().await;
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-9"))
        .await;
    assert_eq!(s, 200);
    let mut other = trade("T-9");
    other["msg"] = json!("交易失败");
    assert_err(
        &app.post(&app.city(), "/api/v1/callback", &other).await,
        409,
        "4007",
        "tradeNo",
    );
    // the tradeType alias of targetType is the same content
    let mut alias = trade("T-9");
    let t = alias.as_object_mut().unwrap().remove("targetType").unwrap();
    alias["tradeType"] = t;
    let (s, b) = app.post(&app.city(), "/api/v1/callback", &alias).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["errMsg"].as_str().unwrap().contains("重复"));
}

#[tokio::test]
async fn a_failing_push_gateway_is_retried_until_it_delivers() {
    let app = spawn().await;
    app.push().fail_next(3, 503);
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-R"))
        .await;
    assert_eq!(s, 200);
    assert!(app.push().wait_for(1, WAIT).await);
    assert_eq!(app.push().attempts(), 4);
    assert_eq!(app.push().pushes().len(), 1);
}

#[tokio::test]
async fn a_push_gateway_refusal_goes_to_the_dead_letter_topic() {
    let app = spawn().await;
    app.push().fail_next(1, 400);
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-D"))
        .await;
    assert_eq!(s, 200);
    let dlq = app.province_node().bus.topics().dlq(Topic::Notify);
    let mut c = app
        .province_node()
        .bus
        .subscribe(&dlq, "test")
        .await
        .unwrap();
    let r = tokio::time::timeout(WAIT, c.next()).await.unwrap().unwrap();
    assert!(r.header("dlqReason").unwrap().contains("400"));
    let n: akm::events::Notification = events::decode(&r.payload).unwrap();
    assert_eq!(n.trade_no, "T-D");
}

#[tokio::test]
async fn trades_survive_a_province_outage() {
    let dir = tempfile::tempdir().unwrap();
    // the province's address answers nothing until the province is up
    let front = Front::start().await;
    let mut s = settings(&dir.path().join("city"));
    s.province_url = Some(format!("http://{}", front.addr));
    let city = start(s, Roles::City).await;
    let http = reqwest::Client::new();
    let clock = akm::clock::system();
    let city_url = city.city_url().unwrap();
    let secret = register_app(&http, &clock, &city_url, "t-card", "card-system", json!({})).await;
    let card = akm::signing::Signer::new("t-card", secret, akm::signing::SignMethod::HmacSha256);
    for no in ["OUT-1", "OUT-2"] {
        let url = format!("{city_url}/api/v1/callback");
        let r = signed(
            &http,
            Some(&card),
            &clock,
            "POST",
            &url,
            trade(no).to_string().into_bytes(),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(
            r.status(),
            200,
            "callbacks are accepted while the province is down"
        );
    }
    // the province comes up later, behind the city's province address
    let push = PushSim::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap();
    let mut s = settings(&dir.path().join("province"));
    s.push_url = Some(push.url());
    let province = start(s, Roles::Province).await;
    // the city's app, as an operator would register it
    let p = province.province.as_ref().unwrap();
    register_city_app(&p.store).await;
    front.open(p.addr);
    assert!(
        push.wait_for(2, WAIT).await,
        "forwarded trades did not reach the resident"
    );
    let mut nos: Vec<String> = push
        .pushes()
        .iter()
        .map(|p| p["tradeNo"].as_str().unwrap().to_string())
        .collect();
    nos.sort();
    assert_eq!(nos, ["OUT-1", "OUT-2"]);
    city.shutdown().await;
    province.shutdown().await;
}

#[tokio::test]
async fn the_trade_topic_is_avro_from_the_schema_files_with_no_personal_data() {
    let app = spawn().await;
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-A"))
        .await;
    assert_eq!(s, 200);
    let bus = &app.province_node().bus;
    let mut c = bus
        .subscribe(&bus.topics().name(Topic::Trade), "analytics-test")
        .await
        .unwrap();
    let r = tokio::time::timeout(WAIT, c.next()).await.unwrap().unwrap();
    // readable with the schema file alone, as any Avro tool would
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/TradeRecorded.avsc"
    ))
    .unwrap();
    let schema = apache_avro::Schema::parse_str(&src).unwrap();
    assert_eq!(&r.payload[..2], &[0xC3, 0x01]);
    let fp = schema.fingerprint::<apache_avro::rabin::Rabin>().bytes;
    assert_eq!(&r.payload[2..10], &fp[..]);
    let v = apache_avro::from_avro_datum(&schema, &mut &r.payload[10..], None).unwrap();
    let t: TradeRecorded = apache_avro::from_value(&v).unwrap();
    assert_eq!(
        (
            t.trade_no.as_str(),
            t.city_no.as_str(),
            t.target_type.as_str()
        ),
        ("T-A", "340100000000", HEALTH)
    );
    assert_eq!(t.subject_id.len(), 64);
    assert_eq!(t.target_name, "合肥电子健康卡");
    let raw = String::from_utf8_lossy(&r.payload);
    for secret in [ZHANG, "张三", "15665439684", "EHC-0001"] {
        assert!(!raw.contains(secret), "{secret} is on akm.trade");
    }
    // the same resident always maps to the same subject
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-B"))
        .await;
    assert_eq!(s, 200);
    let r2 = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let r = c.next().await.unwrap();
            let t2: TradeRecorded = events::decode(&r.payload).unwrap();
            if t2.trade_no == "T-B" {
                return t2;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(r2.subject_id, t.subject_id);
}

#[tokio::test]
async fn an_undecodable_record_goes_to_the_dead_letter_topic_and_the_worker_goes_on() {
    let app = spawn().await;
    let bus = &app.province_node().bus;
    let notify = bus.topics().name(Topic::Notify);
    bus.publish(akm::bus::Message::new(
        notify,
        b"T-P".to_vec(),
        b"not avro".to_vec(),
    ))
    .await
    .unwrap();
    let mut dlq = bus
        .subscribe(&bus.topics().dlq(Topic::Notify), "poison-test")
        .await
        .unwrap();
    let r = tokio::time::timeout(WAIT, dlq.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.payload, b"not avro");
    assert!(
        r.header("dlqReason").unwrap().contains("decode"),
        "{:?}",
        r.headers
    );
    // the notifier is not stuck on it
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("T-AFTER"))
        .await;
    assert_eq!(s, 200);
    assert!(app.push().wait_for(1, WAIT).await);
}
