//! Province services: decode, config query with fallback, admin API.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn decode_discloses_the_resident_and_their_fused_card() {
    let app = spawn().await;
    let qr = app.qr(ZHANG).await;
    let (s, b) = app.post(&app.province(), "/api/v1/decode", &json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "senceCode": "01002"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["flag"].as_str(), b["errCode"].as_str()),
        (Some("200"), Some("200"))
    );
    let d = &b["data"];
    assert_eq!(d["name"], "张三");
    assert_eq!(d["idcardNo"], ZHANG);
    assert_eq!(d["userPhone"], "15665439684");
    assert_eq!(d["isSelf"], "1");
    assert_eq!(d["authType"], "2");
    assert_eq!(d["authObject"], "face-1");
    assert_eq!(d["healthLevel"], "1");
    assert_eq!(d["dataSource"], "1");
    assert_eq!(d["targetType"], HEALTH);
    assert_eq!(d["targetId"], "EHC-0001");
    assert_eq!(d["targetObject"], "{\"level\":1}");
}

#[tokio::test]
async fn decode_needs_universal_authorization() {
    let app = spawn().await;
    let qr = app.qr(WANG).await;
    let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    assert_err(
        &app.post(&app.province(), "/api/v1/decode", &body).await,
        403,
        "4004",
        "通用授权",
    );
    // the city proxies the province's answer unchanged
    assert_err(
        &app.post(&app.city(), "/api/v1/decode", &body).await,
        403,
        "4004",
        "通用授权",
    );
}

#[tokio::test]
async fn is_self_follows_the_issued_code() {
    let app = spawn().await;
    let (_, b) = app
        .post(
            &app.province(),
            "/admin/v1/qrcodes",
            &json!({"idcardNo": ZHANG, "isSelf": false}),
        )
        .await;
    let qr = b["data"]["qrCodeUrl"].as_str().unwrap();
    let (_, b) = app
        .post(
            &app.province(),
            "/api/v1/decode",
            &json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": "3400001"}),
        )
        .await;
    assert_eq!(b["data"]["isSelf"], "0", "{b}");
    assert_eq!(b["data"]["targetId"], "", "no fused social security card");
}

#[tokio::test]
async fn config_query_falls_back_city_prefecture_province() {
    let app = spawn().await;
    for base in [app.province(), app.city()] {
        // a county of Hefei -> the Hefei (prefecture) config
        let (s, b) = app
            .post(
                &base,
                "/api/v1/transcode-config",
                &json!({"cityNo": "340104001000", "tradeType": HEALTH}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["belongarea"], "340100000000");
        assert_eq!(b["data"]["targetName"], "合肥电子健康卡");
        assert_eq!(b["data"]["sceneCode"], "01002,01003");
        assert_eq!(b["data"]["targetUrl"], app.card().url(HEALTH));
        // a province-wide type configured once, seen from Wuhu; the Hefei
        // city's own app at the province is scoped to Hefei, so the city
        // relays the province's 4013 for Wuhu
        let got = app
            .post(
                &base,
                "/api/v1/transcode-config",
                &json!({"cityNo": "340200", "targetType": "3400001"}),
            )
            .await;
        if base == app.province() {
            assert_eq!(got.0, 200, "{}", got.1);
            assert_eq!(got.1["data"]["belongarea"], "340000000000");
        } else {
            assert_err(&got, 403, "4013", "3402");
        }
        // a known type with no config anywhere
        let got = app
            .post(
                &base,
                "/api/v1/transcode-config",
                &json!({"cityNo": "340104", "targetType": "3401003"}),
            )
            .await;
        assert_err(&got, 404, "4005", "转码配置");
    }
    // an exact city config wins over the prefecture one
    let (s, _) = app
        .put(
            &app.province(),
            "/admin/v1/transcode-configs",
            &json!({
        "belongarea": "340104001000", "targetType": HEALTH, "targetName": "蜀山区健康卡",
        "targetUrl": "http://127.0.0.1:1/x", "sceneCode": "01002"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, b) = app
        .post(
            &app.province(),
            "/api/v1/transcode-config",
            &json!({"cityNo": "340104001000", "targetType": HEALTH}),
        )
        .await;
    assert_eq!(b["data"]["targetName"], "蜀山区健康卡");
}

#[tokio::test]
async fn configured_types_extend_the_dictionary() {
    let app = spawn().await;
    let got = app
        .post(
            &app.province(),
            "/api/v1/transcode-config",
            &json!({"cityNo": "340100", "targetType": "3401099"}),
        )
        .await;
    assert_err(&got, 400, "4008", "targetType");
    let (s, _) = app
        .put(
            &app.province(),
            "/admin/v1/transcode-configs",
            &json!({
        "belongarea": "340100", "targetType": "3401099", "targetName": "合肥图书馆卡",
        "targetUrl": app.card().url("3401099"), "sceneCode": "02002"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = app
        .post(
            &app.province(),
            "/api/v1/transcode-config",
            &json!({"cityNo": "340100", "targetType": "3401099"}),
        )
        .await;
    assert_eq!(
        (s, b["data"]["targetName"].as_str()),
        (200, Some("合肥图书馆卡"))
    );
}

#[tokio::test]
async fn admin_rejects_bad_records() {
    let app = spawn().await;
    let got = app.put(&app.province(), "/admin/v1/residents", &json!({
        "idcardNo": ZHANG, "name": "张三", "userPhone": "156", "healthLevel": "1", "dataSource": "1", "universalAuth": true})).await;
    assert_err(&got, 400, "4001", "userPhone");
    let got = app.put(&app.province(), "/admin/v1/residents", &json!({
        "idcardNo": ZHANG, "name": "张三", "userPhone": "15665439684", "healthLevel": "4", "dataSource": "1", "universalAuth": true})).await;
    assert_err(&got, 400, "4001", "healthLevel");
    let got = app.put(&app.province(), "/admin/v1/transcode-configs", &json!({
        "belongarea": "340100", "targetType": HEALTH, "targetName": "x", "targetUrl": "ftp://x", "sceneCode": "01002"})).await;
    assert_err(&got, 400, "4001", "targetUrl");
    let got = app.put(&app.province(), "/admin/v1/transcode-configs", &json!({
        "belongarea": "340100", "targetType": HEALTH, "targetName": "x", "targetUrl": "http://x", "sceneCode": "01002,09999"})).await;
    assert_err(&got, 400, "4008", "sceneCode");
    let got = app
        .post(
            &app.province(),
            "/admin/v1/qrcodes",
            &json!({"idcardNo": "999999999999999999"}),
        )
        .await;
    assert_err(&got, 400, "4001", "idcardNo");
}

/// Admin is for operator apps only: unsigned, signed by a service app, or
/// on a node without an operator app, the answer is 4010/4013 and never
/// says whether the ID number exists.
#[tokio::test]
async fn admin_needs_an_operator_app() {
    let app = spawn().await;
    let url = format!("{}/admin/v1/qrcodes", app.province());
    for id in [ZHANG, "340104190001011111"] {
        let body = json!({"idcardNo": id}).to_string().into_bytes();
        let unsigned = app
            .send(signed(
                &app.http,
                None,
                &app.clock,
                "POST",
                &url,
                body.clone(),
            ))
            .await;
        assert_err(&unsigned, 401, "4010", "认证失败");
        let caller = app.signers.get("caller");
        let service_app = app
            .send(signed(&app.http, caller, &app.clock, "POST", &url, body))
            .await;
        assert_err(&service_app, 403, "4013", "无权调用admin");
    }
    // the operator gets through
    assert!(app.qr(ZHANG).await.contains("akm:qrcode:"));

    // a node started without AKM_ADMIN_APP_ID has no operator at all
    let locked = spawn_with(|s| {
        s.admin_app_id = None;
        s.admin_app_secret = None;
    })
    .await;
    let url = format!("{}/admin/v1/residents", locked.province());
    let got = locked
        .send(signed(
            &locked.http,
            Some(&operator()),
            &locked.clock,
            "PUT",
            &url,
            b"{}".to_vec(),
        ))
        .await;
    assert_err(&got, 401, "4010", "应用未注册");
}

/// QR expiry reads the injected clock: a code issued now answers until its
/// lifetime has passed on that clock, then 4003, with no waiting.
#[tokio::test]
async fn a_qr_code_expires_when_the_clock_passes_its_lifetime() {
    let clock = akm::clock::ManualClock::new();
    let app = spawn_clocked(|_| {}, clock.clone()).await;
    let qr = app.qr(ZHANG).await; // default lifetime: 300 s
    let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    let (s, b) = app.post(&app.province(), "/api/v1/decode", &body).await;
    assert_eq!(s, 200, "{b}");
    clock.advance_ms(299_000);
    assert_eq!(
        app.post(&app.province(), "/api/v1/decode", &body).await.0,
        200
    );
    clock.advance_ms(2_000);
    assert_err(
        &app.post(&app.province(), "/api/v1/decode", &body).await,
        404,
        "4003",
        "安康码",
    );
}

/// `start` wires the roles and seeds nothing: demo data is `demo::seed`'s
/// job, run beside start-up by `akm serve`.
#[tokio::test]
async fn start_seeds_no_demo_data_and_demo_seed_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.demo = None;
    let p = start(s.clone(), akm::Roles::All).await;
    let province = p.province.as_ref().unwrap();
    assert!(province.store.is_empty());
    let curl = akm::demo::seed(&p, &s).await.unwrap();
    assert!(curl.is_some_and(|d| d.call.contains("/api/v1/transcode")));
    assert!(!province.store.is_empty());
}
