//! City services and both business modes: transcode (request-reply over the
//! bus, identity from the province's decode, codes from the card system),
//! decode proxy, and the failure answers of the parties behind it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

fn transcode_body(qr: &str) -> serde_json::Value {
    json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "sceneCode": "01002", "targetObject": "{\"windowNo\":\"3\"}"})
}

#[tokio::test]
async fn mode_a_transcode_returns_every_card_of_the_resident() {
    let app = spawn().await;
    for base in [app.city(), app.province()] {
        let qr = app.qr(ZHANG).await;
        let before = app.card().calls();
        let (s, b) = app
            .post(&base, "/api/v1/transcode", &transcode_body(&qr))
            .await;
        assert_eq!(s, 200, "{b}");
        let codes = b["data"].as_array().unwrap();
        assert_eq!(codes.len(), 2, "{b}");
        assert_eq!(codes[0]["targetId"], "EHC-0001");
        assert_eq!(codes[1]["targetObject"], "{\"kid\":1}");
        assert!(codes[0]["targetQrCode"]
            .as_str()
            .unwrap()
            .starts_with("3401002:"));
        assert_eq!(app.card().calls(), before + 1);
        // what the card system was asked (SPEC §5)
        let asked = app.card().last_request().unwrap();
        assert_eq!(asked["idcardNo"], ZHANG);
        assert_eq!(asked["name"], "张三");
        assert_eq!(asked["userPhone"], "15665439684");
        assert_eq!(asked["cityNo"], "340100000000");
        assert_eq!(asked["sceneCode"], "01002");
        assert_eq!(asked["targetObject"], "{\"windowNo\":\"3\"}");
    }
    assert!(app.city_node().pending.is_empty());
}

#[tokio::test]
async fn a_resident_without_the_card_gets_an_empty_list() {
    let app = spawn().await;
    let (s, _) = app
        .put(
            &app.province(),
            "/admin/v1/residents",
            &json!({
        "idcardNo": "340103200001010000", "name": "赵六", "userPhone": "13900000000",
        "healthLevel": "1", "dataSource": "2", "universalAuth": true}),
        )
        .await;
    assert_eq!(s, 200);
    let qr = app.qr("340103200001010000").await;
    let (s, b) = app
        .post(&app.city(), "/api/v1/transcode", &transcode_body(&qr))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"], json!([]));
}

#[tokio::test]
async fn mode_b_card_system_decodes_through_the_city() {
    let app = spawn().await;
    let qr = app.qr(ZHANG).await;
    let (s, b) = app
        .post(
            &app.city(),
            "/api/v1/decode",
            &json!({"cityNo": "340100000000", "qrCodeUrl": qr, "targetType": HEALTH}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["idcardNo"], ZHANG);
    assert_eq!(b["data"]["targetId"], "EHC-0001");
    assert_eq!(b["data"]["isSelf"], "1");
}

#[tokio::test]
async fn no_config_for_the_type_is_4005() {
    let app = spawn().await;
    let qr = app.qr(ZHANG).await;
    let mut body = transcode_body(&qr);
    body["targetType"] = json!("3402002");
    body.as_object_mut().unwrap().remove("sceneCode");
    assert_err(
        &app.post(&app.city(), "/api/v1/transcode", &body).await,
        404,
        "4005",
        "转码配置",
    );
}

#[tokio::test]
async fn a_slow_card_system_gives_5004_within_the_deadline_and_no_pending_entry() {
    let app = spawn_with(|s| s.transcode_timeout = Duration::from_millis(800)).await;
    app.card().set_delay(Duration::from_secs(3));
    let qr = app.qr(ZHANG).await;
    let started = Instant::now();
    let got = app
        .post(&app.city(), "/api/v1/transcode", &transcode_body(&qr))
        .await;
    let took = started.elapsed();
    assert_err(&got, 504, "5004", "超时");
    assert!(
        took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
    assert_eq!(app.city_node().pending.len(), 0);
    // the platform still answers once the card system is back
    app.card().set_delay(Duration::ZERO);
    let (s, b) = app
        .post(
            &app.city(),
            "/api/v1/transcode",
            &transcode_body(&app.qr(ZHANG).await),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_failing_card_system_gives_5001() {
    let app = spawn().await;
    app.card().set_fail(true);
    let qr = app.qr(ZHANG).await;
    let got = app
        .post(&app.city(), "/api/v1/transcode", &transcode_body(&qr))
        .await;
    assert_err(&got, 502, "5001", "卡管系统");
    // the reply crossed the bus as (errCode, detail): the prefix is there once,
    // followed by the card system's code (never its own words)
    assert_eq!(
        got.1["errMsg"], "卡管系统生码失败：卡管系统返回错误码5000",
        "{}",
        got.1
    );
}

#[tokio::test]
async fn an_unreachable_province_gives_5002_to_the_city_callers() {
    // a province address that closes every connection
    let down = Front::start().await;
    let app = spawn().await;
    let lonely = start(
        akm::config::Settings {
            province_url: Some(format!("http://{}", down.addr)),
            ..settings(app._dir.path().join("lonely").as_path())
        },
        akm::Roles::City,
    )
    .await;
    let url = lonely.city_url().unwrap();
    let card = app.register(&url, "t-card", "card-system", json!({})).await;
    let qr = app.qr(ZHANG).await;
    let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    let got = app
        .send(signed(
            &app.http,
            Some(&card),
            &app.clock,
            "POST",
            &format!("{url}/api/v1/decode"),
            body.to_string().into_bytes(),
        ))
        .await;
    assert_err(&got, 502, "5002", "省级");
    lonely.shutdown().await;
}

#[tokio::test]
async fn too_many_waiting_requests_are_4029() {
    let app = spawn_with(|s| {
        s.max_pending = 1;
        // the first waits on the slow card system (1.5 s), then must still
        // finish in time on a busy test broker
        s.transcode_timeout = Duration::from_millis(5000);
    })
    .await;
    app.card().set_delay(Duration::from_millis(1500));
    let first_qr = app.qr(ZHANG).await;
    let second_qr = app.qr(ZHANG).await;
    let (city, first_body) = (app.city(), transcode_body(&first_qr));
    let first = app.post(&city, "/api/v1/transcode", &first_body);
    let second = async {
        // the second request is sent once the first one is waiting
        while app.city_node().pending.is_empty() {
            tokio::task::yield_now().await;
        }
        app.post(
            &app.city(),
            "/api/v1/transcode",
            &transcode_body(&second_qr),
        )
        .await
    };
    let (a, b) = tokio::join!(first, second);
    assert_eq!(a.0, 200, "{}", a.1);
    assert_err(&b, 429, "4029", "频繁");
}

/// Direct replies: a request taken by the same instance's worker is
/// answered to its waiter in memory. The requests still cross the bus;
/// nothing comes back over the reply topics.
#[tokio::test]
async fn an_instance_answers_its_own_requests_without_the_reply_topics() {
    let app = spawn().await;
    let qr = app.qr(ZHANG).await;
    let (s, b) = app
        .post(&app.city(), "/api/v1/transcode", &transcode_body(&qr))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"][0]["targetId"], "EHC-0001");
    let (s, b) = app
        .post(&app.city(), "/api/v1/callback", &trade("DIRECT-1"))
        .await;
    assert_eq!(s, 200, "{b}");
    let bus = &app.city_node().bus;
    let count = |t: akm::bus::Topic| {
        let name = bus.topics().name(t);
        async move { bus.count(&name).await.unwrap() }
    };
    assert!(count(akm::bus::Topic::TranscodeRequest).await >= 1);
    assert!(count(akm::bus::Topic::CallbackRequest).await >= 1);
    assert_eq!(count(akm::bus::Topic::TranscodeReply).await, 0);
    assert_eq!(count(akm::bus::Topic::CallbackReply).await, 0);
    assert!(app.city_node().pending.is_empty());
}
