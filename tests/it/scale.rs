//! Any instance takes any request (Kafka): two province and two city
//! instances on one cluster and prefix answer as one instance would (a
//! QR issued at one province instance transcodes through every instance;
//! a callback retried at the other instance is a duplicate, a conflicting
//! one 4007; one `akm.trade` record and one push per trade); a wiped
//! instance restores the callbacks' state from the changelog; a third
//! instance joins during a burst.

use std::collections::HashMap;
use std::time::Duration;

use std::sync::{Arc, Mutex, RwLock};

use akm::bus::{Bus, BusConsumer, Topic};
use akm::events::TradeRecorded;
use akm::{Platform, Roles};
use serde_json::{json, Value};

use crate::child::{env as bus_env, serve};
use crate::helpers::*;

/// The scale scenarios run one at a time: each runs several instances
/// (child processes) on the one test broker, and four at once on two
/// cores starved a burst for minutes (the other tests still run beside).
static SCALE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const KAFKA_ONLY: &str = "Kafka-only test: set AKM_TEST_BUS=kafka and AKM_TEST_KAFKA_BROKERS";

/// Another instance of `role` beside `app`'s: same cluster, prefix and
/// keys, its own data directory; a city instance calls `province`.
async fn instance(
    app: &App,
    role: Roles,
    dir: &std::path::Path,
    province: Option<String>,
) -> Platform {
    let mut s = settings(dir);
    s.topic_prefix = app.province_node().bus.topics().prefix().to_string();
    s.push_url = Some(app.push().url());
    if province.is_some() {
        // the city's own app at the province, written at one province
        // instance and replicated to every other
        let id = format!("t-city-{}", uuid::Uuid::new_v4().simple());
        let secret = app
            .register_secret(&app.province(), &id, "city", json!({}))
            .await;
        s.province_app_id = Some(id);
        s.province_app_secret = Some(akm::config::Secret::new(secret));
    }
    s.province_url = province;
    start(s, role).await
}

/// A callback for `no` with `msg`, posted to `city` as the card system.
async fn callback(app: &App, city: &str, no: &str, msg: &str) -> (u16, Value) {
    let card = app.signers.get("card").unwrap();
    let mut body = trade(no);
    body["msg"] = json!(msg);
    app.send_as(card, "POST", &format!("{city}/api/v1/callback"), &body)
        .await
}

/// A callback sent again, as a card system would, while the answer is 5004
/// (the owner did not answer in time: on the test broker under the whole
/// suite's load, a moment's stall), at most three times; the last answer
/// and whether it was sent more than once.
async fn answered(app: &App, city: &str, no: &str, msg: &str) -> (u16, Value, bool) {
    let mut tries = 0;
    loop {
        let (s, b) = callback(app, city, no, msg).await;
        tries += 1;
        if b["errCode"] != "5004" || tries == 3 {
            return (s, b, tries > 1);
        }
    }
}

/// Every `akm.trade` record (trade numbers starting with `prefix`) by
/// tradeNo: the acceptance (header) of each copy, once `n` records are
/// there (or after a while).
async fn trades_on_topic(bus: &Bus, prefix: &str, n: usize) -> HashMap<String, Vec<String>> {
    let topic = bus.topics().name(Topic::Trade);
    let group = format!("test-reader-{}", uuid::Uuid::new_v4().simple());
    let mut c = bus.subscribe(&topic, &group).await.unwrap();
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut take = |r: akm::bus::Record| {
        let t: TradeRecorded = akm::events::decode(&r.payload).unwrap();
        if t.trade_no.starts_with(prefix) {
            let acceptance = r.header("acceptance").unwrap_or_default().to_string();
            seen.entry(t.trade_no).or_default().push(acceptance);
        }
    };
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    let mut count = 0;
    while count < n && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(1), c.next()).await {
            take(r);
            count += 1;
        }
    }
    // anything doubled would arrive with the rest: read a moment longer
    let settle = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(r)) = tokio::time::timeout_at(settle, c.next()).await {
        take(r);
    }
    seen
}

/// Wait until the push gateway has every one of `nos`.
async fn all_pushed(push: &akm::sim::PushSim, nos: &[String]) {
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    loop {
        let got = push.delivered_keys();
        let missing = nos.iter().filter(|n| !got.contains(*n)).count();
        if missing == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} trades never pushed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node's `/readyz` answer.
async fn readyz(app: &App, base: &str) -> (u16, Value) {
    let r = app.http.get(format!("{base}/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn two_province_and_two_city_instances_answer_as_one() {
    kafka().expect(KAFKA_ONLY);
    let _one_at_a_time = SCALE.lock().await;
    let app = spawn().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let province2 = instance(&app, Roles::Province, d1.path(), None).await;
    let p2 = province2.province_url().unwrap();
    let city2 = instance(&app, Roles::City, d2.path(), Some(p2.clone())).await;
    let (c1, c2) = (app.city(), city2.city_url().unwrap());

    // a QR issued at the first province instance transcodes through both
    // city instances (each asking its own province instance)
    let terminal = app.signers.get("terminal").unwrap().clone();
    for city in [&c1, &c2, &c1, &c2] {
        let qr = app.qr(ZHANG).await;
        let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "sceneCode": "01002"});
        // the grant reaches the other province instance within its
        // consume latency: 4003 until then
        let deadline = tokio::time::Instant::now() + WAIT;
        let (s, b) = loop {
            let url = format!("{city}/api/v1/transcode");
            let (s, b) = app.send_as(&terminal, "POST", &url, &body).await;
            if b["errCode"] != "4003" || tokio::time::Instant::now() > deadline {
                break (s, b);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(s, 200, "{city}: {b}");
        assert_eq!(b["data"][0]["targetId"], "EHC-0001", "{b}");
    }

    // 500 callbacks, each posted to one city instance and retried to the other
    let nos: Vec<String> = (0..500).map(|i| format!("SC-{i}")).collect();
    let tasks: Vec<_> = (0..10)
        .map(|w| {
            let (app, c1, c2, nos) = (&app, &c1, &c2, &nos);
            async move {
                for (i, no) in nos.iter().enumerate().skip(w).step_by(10) {
                    let (first, again) = if i % 2 == 0 { (c1, c2) } else { (c2, c1) };
                    let (s, b, retried) = answered(app, first, no, "交易成功").await;
                    assert_eq!(s, 200, "{no}: {b}");
                    if !retried {
                        // (after a 5004 the retry may find the first acceptance)
                        assert_eq!(b["errMsg"], "消息回传成功", "{no}: {b}");
                    }
                    let (s, b, _) = answered(app, again, no, "交易成功").await;
                    assert_eq!(s, 200, "{no} again: {b}");
                    assert!(
                        b["errMsg"].as_str().unwrap().contains("重复"),
                        "{no} retried at the other instance was not a duplicate: {b}"
                    );
                }
            }
        })
        .collect();
    futures::future::join_all(tasks).await;

    // another content under a tradeNo the other instance took: 4007
    let (s, b) = callback(&app, &c1, "SC-CONFLICT", "交易成功").await;
    assert_eq!(s, 200, "{b}");
    let got = callback(&app, &c2, "SC-CONFLICT", "交易失败").await;
    assert_err(&got, 409, "4007", "SC-CONFLICT");

    // one record on akm.trade and one push per trade
    let mut all = nos.clone();
    all.push("SC-CONFLICT".into());
    let on_topic = trades_on_topic(&app.province_node().bus, "SC-", all.len()).await;
    assert_eq!(on_topic.len(), all.len(), "trades missing on akm.trade");
    let doubled: Vec<_> = on_topic.iter().filter(|(_, n)| n.len() > 1).collect();
    assert!(doubled.is_empty(), "doubled on akm.trade: {doubled:?}");
    all_pushed(app.push(), &all).await;
    assert!(
        app.push().dropped().is_empty(),
        "pushed twice: {:?}",
        app.push().dropped()
    );

    // each instance reports the partitions it owns
    for base in [&c1, &c2, &app.province(), &p2] {
        let (s, b) = readyz(&app, base).await;
        assert_eq!(s, 200, "{base}: {b}");
        assert_eq!(b["restoring"], false, "{b}");
        assert!(
            b["stateApplied"].as_object().is_some_and(|m| !m.is_empty()),
            "{b}"
        );
    }
    city2.shutdown().await;
    province2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn a_wiped_instance_restores_the_callbacks_state_from_the_changelog() {
    kafka().expect(KAFKA_ONLY);
    let _one_at_a_time = SCALE.lock().await;
    let app = spawn().await;
    let nos: Vec<String> = (0..30).map(|i| format!("WR-{i}")).collect();
    for no in &nos {
        let (s, b) = callback(&app, &app.city(), no, "交易成功").await;
        assert_eq!(s, 200, "{no}: {b}");
    }
    // a city instance whose data directory is new (as if wiped)
    let dir = tempfile::tempdir().unwrap();
    let wiped = instance(&app, Roles::City, dir.path(), Some(app.province())).await;
    let node = wiped.city.as_ref().unwrap();
    // start() returns once restored: every acceptance is in its store
    for no in &nos {
        let key = akm::store::trade_key("340100000000", HEALTH, no);
        assert!(
            node.store.trade_acceptance(&key).unwrap().is_some(),
            "{no} not restored"
        );
    }
    let url = wiped.city_url().unwrap();
    let (s, b) = readyz(&app, &url).await;
    assert_eq!((s, b["restoring"].clone()), (200, json!(false)), "{b}");
    // a duplicate sent to it is still recognised, a conflict still refused
    let (s, b) = callback(&app, &url, &nos[0], "交易成功").await;
    assert_eq!(s, 200, "{b}");
    assert!(b["errMsg"].as_str().unwrap().contains("重复"), "{b}");
    let got = callback(&app, &url, &nos[1], "交易失败").await;
    assert_err(&got, 409, "4007", &nos[1]);
    wiped.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn a_third_instance_joins_during_a_burst_and_answers_stay_correct() {
    kafka().expect(KAFKA_ONLY);
    let _one_at_a_time = SCALE.lock().await;
    let app = spawn().await;
    let d2 = tempfile::tempdir().unwrap();
    let city2 = instance(&app, Roles::City, d2.path(), Some(app.province())).await;
    let c2 = city2.city_url().unwrap();
    let c1 = app.city();
    let stop = tokio_util::sync::CancellationToken::new();
    // a burst (about 50 callbacks/s) over both instances while a third joins
    let burst = {
        let (app, c1, c2, stop) = (&app, c1.clone(), c2.clone(), stop.clone());
        async move {
            // each tradeNo with when it was acknowledged
            let mut sent = Vec::new();
            let mut i = 0;
            while !stop.is_cancelled() {
                let no = format!("JN-{i}");
                let city = if i % 2 == 0 { &c1 } else { &c2 };
                loop {
                    let (s, b) = callback(app, city, &no, "交易成功").await;
                    if s == 200 {
                        break;
                    }
                    // a rebalance may outlast the deadline: retried as any card system would
                    assert_eq!(b["errCode"], "5004", "{no}: {b}");
                }
                sent.push((no, tokio::time::Instant::now()));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        }
    };
    let join = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let starting = tokio::time::Instant::now();
        let d3 = tempfile::tempdir().unwrap();
        let city3 = instance(&app, Roles::City, d3.path(), Some(app.province())).await;
        // restored before it serves, and it holds partitions of the owners' group
        let c3 = city3.city_url().unwrap();
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        loop {
            let (s, b) = readyz(&app, &c3).await;
            let owns = b["partitions"].to_string().contains("akm-callbacks-");
            if s == 200 && owns {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{b}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let joined = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.cancel();
        (city3, d3, c3, starting, joined)
    };
    let (sent, (city3, _d3, c3, starting, joined)) = tokio::join!(burst, join);
    // the burst spans the join: acknowledged before the third instance
    // started, and after it held partitions (however long the rebalance
    // held the ones in between)
    assert!(
        sent.iter().any(|(_, at)| *at < starting) && sent.iter().any(|(_, at)| *at > joined),
        "the burst does not span the join: {} sent",
        sent.len()
    );
    let sent: Vec<String> = sent.into_iter().map(|(no, _)| no).collect();
    // every one of them, sent again to the newcomer, is a duplicate
    for no in &sent {
        let (s, b) = callback(&app, &c3, no, "交易成功").await;
        assert_eq!(s, 200, "{no}: {b}");
        assert!(b["errMsg"].as_str().unwrap().contains("重复"), "{no}: {b}");
    }
    let on_topic = trades_on_topic(&app.province_node().bus, "JN-", sent.len()).await;
    assert_eq!(on_topic.len(), sent.len());
    assert!(
        on_topic.values().all(|n| n.len() == 1),
        "doubled: {on_topic:?}"
    );
    city3.shutdown().await;
    city2.shutdown().await;
}

/// Card systems posting callbacks (about 50/s in all) to the city
/// instances in `urls`, each tradeNo to one instance and, when that fails,
/// to the next, until one answers 2xx; the acknowledged ones go into `acked`.
fn burst(
    urls: Arc<RwLock<Vec<String>>>,
    card: akm::signing::Signer,
    stop: tokio_util::sync::CancellationToken,
    acked: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let clock = akm::clock::system();
        let mut i = 0usize;
        while !stop.is_cancelled() {
            let no = format!("KL-{i}");
            let mut at = i;
            loop {
                let url = {
                    let urls = urls.read().unwrap();
                    format!("{}/api/v1/callback", urls[at % urls.len()])
                };
                let body = trade(&no).to_string().into_bytes();
                match signed(&http, Some(&card), &clock, "POST", &url, body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => break,
                    _ => {
                        at += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            acked.lock().unwrap().push(no);
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Wait until `acked` has `n` more than `from`; how many it has.
async fn acked_grows(acked: &Arc<Mutex<Vec<String>>>, from: usize, n: usize) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = acked.lock().unwrap().len();
        if now >= from + n {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burst stalled at {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a Kafka broker: scripts/test.sh runs it with AKM_TEST_BUS=kafka and --include-ignored"]
async fn kill_9_of_a_province_then_a_city_instance_during_a_burst_loses_and_doubles_nothing() {
    kafka().expect(KAFKA_ONLY);
    let _one_at_a_time = SCALE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let s = fast_failover(settings(&dir.path().join("settings")));
    apply_topics(&s).await;
    let push =
        akm::sim::PushSim::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
            .unwrap();
    let mut env = bus_env(&s);
    env.push(("AKM_PUSH_URL", push.url()));
    let (p1_dir, p2_dir) = (dir.path().join("p1"), dir.path().join("p2"));
    let mut p1 = serve("province", &p1_dir, &env, Arc::default());
    let p2 = serve("province", &p2_dir, &env, Arc::default());
    let http = reqwest::Client::new();
    let city_secret = register_app(
        &http,
        &akm::clock::system(),
        &p1.province(),
        CITY_APP,
        "city",
        json!({"cityNos": ["3401"]}),
    )
    .await;
    // the cities reach the province through a front, as through a balancer
    let front = Front::start().await;
    front.open(p1.addr());
    let mut city_env = bus_env(&s);
    city_env.push(("AKM_PROVINCE_URL", format!("http://{}", front.addr)));
    city_env.push(("AKM_PROVINCE_APP_ID", CITY_APP.into()));
    city_env.push(("AKM_PROVINCE_APP_SECRET", city_secret));
    let (c1_dir, c2_dir) = (dir.path().join("c1"), dir.path().join("c2"));
    let mut c1 = serve("city", &c1_dir, &city_env, Arc::default());
    let c2 = serve("city", &c2_dir, &city_env, Arc::default());
    let card = register_signer(&http, &c1.city(), "t-card", "card-system", json!({})).await;
    let urls = Arc::new(RwLock::new(vec![c1.city(), c2.city()]));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let card_systems = burst(urls.clone(), card, stop.clone(), acked.clone());

    let mut seen = acked_grows(&acked, 0, 40).await;
    // a province instance dies: the balancer sends to the other
    p1.kill();
    front.open(p2.addr());
    seen = acked_grows(&acked, seen, 40).await;
    // back after the broker evicted it (its session ran out)
    tokio::time::sleep(RESTART_DELAY).await;
    p1 = serve("province", &p1_dir, &env, Arc::default());
    seen = acked_grows(&acked, seen, 40).await;
    // a city instance dies: the card systems go to the other (Tansu may
    // leave the dead member's partitions unowned until the group changes
    // again, so the burst is only required to go on after the restart)
    c1.kill();
    tokio::time::sleep(RESTART_DELAY).await;
    c1 = serve("city", &c1_dir, &city_env, Arc::default());
    urls.write().unwrap()[0] = c1.city();
    acked_grows(&acked, seen, 40).await;
    stop.cancel();
    card_systems.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    all_pushed(&push, &acked).await;
    // doubles at the gateway, if any, carried the key of the first push
    assert_eq!(push.unkeyed(), 0);
    let bus = Bus::kafka(
        akm::bus::KafkaOptions::from_settings(&s),
        akm::bus::Topics::new(&s.topic_prefix).unwrap(),
    )
    .await
    .unwrap();
    let on_topic = trades_on_topic(&bus, "KL-", acked.len()).await;
    let missing: Vec<_> = acked
        .iter()
        .filter(|n| !on_topic.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged, not on akm.trade: {missing:?}"
    );
    let doubled: Vec<_> = on_topic.iter().filter(|(_, n)| n.len() > 1).collect();
    assert!(doubled.is_empty(), "doubled on akm.trade: {doubled:?}");
    drop((c1, c2, p1, p2));
}
