//! Bad input on every service: the spec's envelope with the right errCode
//! and a Chinese errMsg naming the field; never a 5xx.

use serde_json::{json, Value};

use crate::helpers::*;

fn decode_body(qr: &str) -> Value {
    json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "sceneCode": "01002"})
}

#[tokio::test]
async fn malformed_bodies_are_4001() {
    let app = spawn().await;
    for base in [app.province(), app.city()] {
        for path in [
            "/api/v1/decode",
            "/api/v1/transcode",
            "/api/v1/callback",
            "/api/v1/transcode-config",
        ] {
            let got = app
                .call("POST", &base, path, b"{\"cityNo\":".to_vec())
                .await;
            assert_err(&got, 400, "4001", "JSON");
            let got = app.call("POST", &base, path, b"[1,2]".to_vec()).await;
            assert_err(&got, 400, "4001", "JSON对象");
            let big = format!("{{\"cityNo\":\"{}\"}}", "1".repeat(70 * 1024));
            let got = app.call("POST", &base, path, big.into_bytes()).await;
            assert_err(&got, 400, "4001", "64KB");
        }
    }
}

#[tokio::test]
async fn wrong_types_and_missing_fields_name_the_field() {
    let app = spawn().await;
    let qr = app.qr(ZHANG).await;
    let got = app
        .post(
            &app.province(),
            "/api/v1/decode",
            &json!({"cityNo": 340100, "qrCodeUrl": qr, "targetType": HEALTH}),
        )
        .await;
    assert_err(&got, 400, "4001", "cityNo");
    let got = app
        .post(
            &app.city(),
            "/api/v1/transcode",
            &json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": 3401002}),
        )
        .await;
    assert_err(&got, 400, "4001", "targetType");
    let got = app
        .post(
            &app.city(),
            "/api/v1/transcode",
            &json!({"cityNo": "340100", "targetType": HEALTH}),
        )
        .await;
    assert_err(&got, 400, "4001", "qrCodeUrl");
    let got = app.post(&app.city(), "/api/v1/transcode", &json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "targetObject": "{not json"})).await;
    assert_err(&got, 400, "4001", "targetObject");
    // every required callback field, one at a time
    for field in [
        "cityNo",
        "name",
        "idcardNo",
        "targetType",
        "targetId",
        "tradeTime",
        "tradeNo",
        "msg",
        "tradeState",
    ] {
        let mut body = trade("MISSING-1");
        body.as_object_mut().unwrap().remove(field);
        let got = app.post(&app.city(), "/api/v1/callback", &body).await;
        assert_err(&got, 400, "4001", field);
    }
    let mut body = trade("TYPE-1");
    body["tradeState"] = json!(1);
    assert_err(
        &app.post(&app.city(), "/api/v1/callback", &body).await,
        400,
        "4001",
        "tradeState",
    );
    let got = app
        .post(
            &app.province(),
            "/api/v1/transcode-config",
            &json!({"cityNo": "340100"}),
        )
        .await;
    assert_err(&got, 400, "4001", "targetType");
}

#[tokio::test]
async fn qr_codes_that_are_not_ankang_or_not_live() {
    let app = spawn().await;
    for base in [app.province(), app.city()] {
        for bad in [
            "1",
            "https://example.com/#/myAkm?id=akm:qrcode:9ec1b6b993b74b8687b06db24ad36d1b",
            "https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm?isScan=1&id=akm:qrcode:XYZ",
        ] {
            assert_err(
                &app.post(&base, "/api/v1/decode", &decode_body(bad)).await,
                400,
                "4002",
                "qrCodeUrl",
            );
            assert_err(
                &app.post(&base, "/api/v1/transcode", &decode_body(bad))
                    .await,
                400,
                "4002",
                "qrCodeUrl",
            );
        }
        let unknown = "https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm?isScan=1&id=akm:qrcode:9ec1b6b993b74b8687b06db24ad36d1b&cityNo=340000000000";
        assert_err(
            &app.post(&base, "/api/v1/decode", &decode_body(unknown))
                .await,
            404,
            "4003",
            "失效",
        );
        assert_err(
            &app.post(
                &base,
                "/api/v1/transcode",
                &decode_body(&app.expired_qr(ZHANG)),
            )
            .await,
            404,
            "4003",
            "失效",
        );
        assert_err(
            &app.post(
                &base,
                "/api/v1/decode",
                &decode_body(&app.expired_qr(ZHANG)),
            )
            .await,
            404,
            "4003",
            "失效",
        );
    }
}

#[tokio::test]
async fn city_numbers_of_the_wrong_shape_are_4006() {
    let app = spawn().await;
    let qr = app.qr(ZHANG).await;
    for bad in ["34010", "3401000", "3401000000001", "34010A", "320100"] {
        let mut body = decode_body(&qr);
        body["cityNo"] = json!(bad);
        for base in [app.province(), app.city()] {
            assert_err(
                &app.post(&base, "/api/v1/decode", &body).await,
                400,
                "4006",
                "cityNo",
            );
            assert_err(
                &app.post(&base, "/api/v1/transcode", &body).await,
                400,
                "4006",
                "cityNo",
            );
            assert_err(
                &app.post(
                    &base,
                    "/api/v1/transcode-config",
                    &json!({"cityNo": bad, "targetType": HEALTH}),
                )
                .await,
                400,
                "4006",
                "cityNo",
            );
        }
        let mut t = trade("CITY-1");
        t["cityNo"] = json!(bad);
        assert_err(
            &app.post(&app.city(), "/api/v1/callback", &t).await,
            400,
            "4006",
            "cityNo",
        );
    }
}

#[tokio::test]
async fn trade_fields_out_of_rule() {
    let app = spawn().await;
    let cases: Vec<(&str, Value)> = vec![
        ("tradeTime", json!("20200230120000")),
        ("tradeTime", json!("2020-06-28 19:34")),
        ("tradeNo", json!("N".repeat(50))),
        ("targetId", json!("I".repeat(100))),
    ];
    for (field, value) in cases {
        let mut body = trade("RULE-1");
        body[field] = value;
        assert_err(
            &app.post(&app.city(), "/api/v1/callback", &body).await,
            400,
            "4001",
            field,
        );
        assert_err(
            &app.post(&app.province(), "/api/v1/callback", &body).await,
            400,
            "4001",
            field,
        );
    }
    let mut ok = trade(&"N".repeat(49));
    ok["targetId"] = json!("I".repeat(99));
    let (s, b) = app.post(&app.city(), "/api/v1/callback", &ok).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn unknown_codes_and_unserved_scenes_are_4008() {
    let app = spawn().await;
    let qr = app.qr(ZHANG).await;
    for base in [app.province(), app.city()] {
        let mut body = decode_body(&qr);
        body["targetType"] = json!("3409002");
        assert_err(
            &app.post(&base, "/api/v1/transcode", &body).await,
            400,
            "4008",
            "targetType",
        );
        assert_err(
            &app.post(&base, "/api/v1/decode", &body).await,
            400,
            "4008",
            "targetType",
        );
        let mut body = decode_body(&qr);
        body["sceneCode"] = json!("01009");
        assert_err(
            &app.post(&base, "/api/v1/transcode", &body).await,
            400,
            "4008",
            "sceneCode",
        );
        let mut body = decode_body(&qr);
        body["senceCode"] = json!("04001");
        body.as_object_mut().unwrap().remove("sceneCode");
        assert_err(
            &app.post(&base, "/api/v1/transcode", &body).await,
            400,
            "4008",
            "sceneCode",
        );
        assert_err(
            &app.post(&base, "/api/v1/decode", &body).await,
            400,
            "4008",
            "sceneCode",
        );
    }
    let mut t = trade("UNKNOWN-T");
    t["targetType"] = json!("3409002");
    assert_err(
        &app.post(&app.city(), "/api/v1/callback", &t).await,
        400,
        "4008",
        "targetType",
    );
}
