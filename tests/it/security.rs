//! Callers (SPEC §9): signatures, windows and nonces, kinds and scopes,
//! rate limits, the audit trail, the city's own credentials, outbound
//! hardening and server limits. Each test fails if its feature is removed.

use std::time::Duration;

use akm::signing::{
    SignMethod, Signed, H_APP_ID, H_NONCE, H_SIGNATURE, H_SIGN_METHOD, H_TIMESTAMP,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// Signature headers for exactly these parts.
#[allow(clippy::too_many_arguments)]
fn headers(
    app_id: &str,
    secret: &str,
    m: SignMethod,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    ts: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    let canonical = Signed {
        method,
        path,
        query,
        app_id,
        timestamp: &ts,
        nonce,
        body,
    }
    .canonical(m);
    vec![
        (H_APP_ID, app_id.to_string()),
        (H_TIMESTAMP, ts),
        (H_NONCE, nonce.to_string()),
        (H_SIGN_METHOD, m.as_str().to_string()),
        (H_SIGNATURE, m.sign(secret, &canonical)),
    ]
}

/// Send `body` to `url` with exactly `hs`.
async fn raw(
    app: &App,
    method: &str,
    url: &str,
    body: &[u8],
    hs: &[(&'static str, String)],
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.http.request(m, url).body(body.to_vec());
    for (k, v) in hs {
        req = req.header(*k, v);
    }
    app.send(req).await
}

fn nonce() -> String {
    akm::signing::fresh_nonce()
}

const CONFIG_PATH: &str = "/api/v1/transcode-config";

fn config_body() -> Vec<u8> {
    json!({"cityNo": "340100", "targetType": HEALTH})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn only_an_exact_signature_of_a_known_app_gets_through() {
    let app = spawn().await;
    let secret = app
        .register_secret(&app.city(), "sig-term", "terminal", json!({}))
        .await;
    let url = format!("{}{CONFIG_PATH}", app.city());
    let body = config_body();
    let now = app.clock.now_ms();
    let sign = |path: &str, query: &str, body: &[u8], secret: &str, id: &str| {
        headers(
            id,
            secret,
            SignMethod::HmacSha256,
            "POST",
            path,
            query,
            body,
            now,
            &nonce(),
        )
    };
    // the exact request passes
    let ok = raw(
        &app,
        "POST",
        &url,
        &body,
        &sign(CONFIG_PATH, "", &body, &secret, "sig-term"),
    )
    .await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    // HMAC-SM3 passes too
    let sm3 = headers(
        "sig-term",
        &secret,
        SignMethod::HmacSm3,
        "POST",
        CONFIG_PATH,
        "",
        &body,
        now,
        &nonce(),
    );
    assert_eq!(raw(&app, "POST", &url, &body, &sm3).await.0, 200);
    // tampered body, path, query; wrong secret; unknown app
    let other = json!({"cityNo": "340100", "targetType": "3400001"})
        .to_string()
        .into_bytes();
    let query_url = format!("{url}?x=2");
    let cases: [(&str, &[u8], Vec<_>, &str); 5] = [
        (
            &url,
            &other,
            sign(CONFIG_PATH, "", &body, &secret, "sig-term"),
            "签名错误",
        ),
        (
            &url,
            &body,
            sign("/api/v1/transcode", "", &body, &secret, "sig-term"),
            "签名错误",
        ),
        (
            &query_url,
            &body,
            sign(CONFIG_PATH, "x=1", &body, &secret, "sig-term"),
            "签名错误",
        ),
        (
            &url,
            &body,
            sign(CONFIG_PATH, "", &body, "not-the-secret", "sig-term"),
            "签名错误",
        ),
        (
            &url,
            &body,
            sign(CONFIG_PATH, "", &body, &secret, "nobody"),
            "应用未注册",
        ),
    ];
    for (to, sent, hs, needle) in cases {
        assert_err(&raw(&app, "POST", to, sent, &hs).await, 401, "4010", needle);
    }
    // each required header missing
    for missing in [H_APP_ID, H_TIMESTAMP, H_NONCE, H_SIGNATURE] {
        let hs: Vec<_> = sign(CONFIG_PATH, "", &body, &secret, "sig-term")
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let got = raw(&app, "POST", &url, &body, &hs).await;
        assert_err(&got, 401, "4010", "缺少签名请求头");
    }
    // an unknown sign method
    let mut hs = sign(CONFIG_PATH, "", &body, &secret, "sig-term");
    hs[3].1 = "HMAC-MD5".into();
    assert_err(
        &raw(&app, "POST", &url, &body, &hs).await,
        401,
        "4010",
        "Sign-Method",
    );
}

#[tokio::test]
async fn stale_future_and_replayed_requests_are_4011() {
    let app = spawn().await;
    let secret = app
        .register_secret(&app.city(), "win-term", "terminal", json!({}))
        .await;
    let url = format!("{}{CONFIG_PATH}", app.city());
    let body = config_body();
    let now = app.clock.now_ms();
    for ts in [now - 301_000, now + 301_000] {
        let hs = headers(
            "win-term",
            &secret,
            SignMethod::HmacSha256,
            "POST",
            CONFIG_PATH,
            "",
            &body,
            ts,
            &nonce(),
        );
        assert_err(
            &raw(&app, "POST", &url, &body, &hs).await,
            401,
            "4011",
            "时间戳",
        );
    }
    // inside the window: accepted once, then the same nonce is a replay
    let hs = headers(
        "win-term",
        &secret,
        SignMethod::HmacSha256,
        "POST",
        CONFIG_PATH,
        "",
        &body,
        now - 200_000,
        &nonce(),
    );
    assert_eq!(raw(&app, "POST", &url, &body, &hs).await.0, 200);
    assert_err(
        &raw(&app, "POST", &url, &body, &hs).await,
        401,
        "4011",
        "X-Akm-Nonce",
    );
}

#[tokio::test]
async fn a_rotated_secret_works_beside_the_old_one_until_the_old_one_is_retired() {
    let app = spawn().await;
    let city = app.city();
    let id = "rot-term";
    let (s, b) = app
        .put(
            &city,
            &format!("/admin/v1/apps/{id}"),
            &json!({"kind": "terminal"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (old, old_id) = (
        b["data"]["secret"].as_str().unwrap().to_string(),
        b["data"]["secretId"].as_str().unwrap().to_string(),
    );
    let (s, b) = app
        .post(&city, &format!("/admin/v1/apps/{id}/secrets"), &json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    let new = b["data"]["secret"].as_str().unwrap().to_string();
    // a third is refused
    let (s, b) = app
        .post(&city, &format!("/admin/v1/apps/{id}/secrets"), &json!({}))
        .await;
    assert_eq!((s, b["errCode"].as_str()), (400, Some("4001")), "{b}");
    // the list shows both ids and no secret
    let (_, list) = app.call("GET", &city, "/admin/v1/apps", Vec::new()).await;
    let text = list.to_string();
    assert!(
        text.contains(&old_id) && !text.contains(&old) && !text.contains(&new),
        "{text}"
    );
    let call = |secret: String| {
        let app = &app;
        let city = city.clone();
        async move {
            let body = config_body();
            let hs = headers(
                id,
                &secret,
                SignMethod::HmacSha256,
                "POST",
                CONFIG_PATH,
                "",
                &body,
                app.clock.now_ms(),
                &nonce(),
            );
            raw(app, "POST", &format!("{city}{CONFIG_PATH}"), &body, &hs).await
        }
    };
    assert_eq!(call(old.clone()).await.0, 200);
    assert_eq!(call(new.clone()).await.0, 200);
    let (s, b) = app
        .call(
            "DELETE",
            &city,
            &format!("/admin/v1/apps/{id}/secrets/{old_id}"),
            Vec::new(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_err(&call(old).await, 401, "4010", "签名错误");
    assert_eq!(call(new).await.0, 200);
}

#[tokio::test]
async fn kinds_and_scopes_are_enforced() {
    let app = spawn().await;
    let (city, province) = (app.city(), app.province());
    let qr = app.qr(ZHANG).await;
    let decode = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    // a terminal may not decode
    let term = app.register(&city, "k-term", "terminal", json!({})).await;
    let got = app
        .send_as(&term, "POST", &format!("{city}/api/v1/decode"), &decode)
        .await;
    assert_err(&got, 403, "4013", "terminal");
    // a card system outside its target types
    let card = app
        .register(
            &city,
            "k-card",
            "card-system",
            json!({"targetTypes": ["3401003"]}),
        )
        .await;
    let got = app
        .send_as(&card, "POST", &format!("{city}/api/v1/decode"), &decode)
        .await;
    assert_err(&got, 403, "4013", "3401002");
    // a city's app at the province, for another prefecture
    let wuhu = app
        .register(&province, "k-wuhu", "city", json!({"cityNos": ["3402"]}))
        .await;
    let got = app
        .send_as(&wuhu, "POST", &format!("{province}/api/v1/decode"), &decode)
        .await;
    assert_err(&got, 403, "4013", "340100000000");
    // and the same app within its prefecture is fine
    let in_scope = json!({"cityNo": "340200", "targetType": "3400001"})
        .to_string()
        .into_bytes();
    let got = app
        .send(signed(
            &app.http,
            Some(&wuhu),
            &app.clock,
            "POST",
            &format!("{province}{CONFIG_PATH}"),
            in_scope,
        ))
        .await;
    assert_eq!(got.0, 200, "{}", got.1);
}

#[tokio::test]
async fn a_callback_outside_scope_leaves_no_trade_no_event_and_no_push() {
    let app = spawn().await;
    let city = app.city();
    let wuhu_card = app
        .register(&city, "w-card", "card-system", json!({"cityNos": ["3402"]}))
        .await;
    let topic = app
        .city_node()
        .bus
        .topics()
        .name(akm::bus::Topic::TradeReported);
    let before = app.city_node().bus.count(&topic).await.unwrap();
    let got = app
        .send(signed(
            &app.http,
            Some(&wuhu_card),
            &app.clock,
            "POST",
            &format!("{city}/api/v1/callback"),
            trade("SC-1").to_string().into_bytes(),
        ))
        .await;
    assert_err(&got, 403, "4013", "340100000000");
    assert_eq!(
        app.city_node().bus.count(&topic).await.unwrap(),
        before,
        "an event was published"
    );
    assert_eq!(app.city_node().store.outbox_len(), 0);
    // the same tradeNo in scope is new (nothing was stored), and it is the only push
    let (s, b) = app.post(&city, "/api/v1/callback", &trade("SC-1")).await;
    assert_eq!(s, 200, "{b}");
    assert!(!b["errMsg"].as_str().unwrap().contains("重复"), "{b}");
    assert!(app.push().wait_for(1, WAIT).await);
    assert_eq!(app.push().pushes().len(), 1);
}

#[tokio::test]
async fn an_app_over_its_rate_limit_gets_4029() {
    let app = spawn().await;
    let city = app.city();
    let slow = app
        .register(&city, "r-term", "terminal", json!({"rateLimit": 2}))
        .await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let got = app
            .send(signed(
                &app.http,
                Some(&slow),
                &app.clock,
                "POST",
                &format!("{city}{CONFIG_PATH}"),
                config_body(),
            ))
            .await;
        codes.push(got.1["errCode"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(&codes[..2], ["200", "200"], "{codes:?}");
    assert!(codes[2..].iter().all(|c| c == "4029"), "{codes:?}");
}

#[tokio::test]
async fn a_config_naming_a_host_outside_the_allow_list_is_4001() {
    let app = spawn_with(|s| s.card_hosts = Some("127.0.0.1, *.hefei.gov.cn".into())).await;
    let config = |url: &str| json!({"belongarea": "340100", "targetType": HEALTH, "targetName": "x", "targetUrl": url, "sceneCode": ""});
    let got = app
        .put(
            &app.city(),
            "/admin/v1/transcode-configs",
            &config("http://evil.example/gen"),
        )
        .await;
    assert_err(&got, 400, "4001", "AKM_CARD_HOSTS");
    let got = app
        .put(
            &app.city(),
            "/admin/v1/transcode-configs",
            &config("https://ehc.hefei.gov.cn/gen"),
        )
        .await;
    assert_eq!(got.0, 200, "{}", got.1);
}

#[tokio::test]
async fn a_card_system_that_redirects_or_floods_is_5001() {
    let app = spawn().await;
    let body = json!({"cityNo": "340100", "qrCodeUrl": app.qr(ZHANG).await, "targetType": HEALTH, "sceneCode": "01002"});
    // a redirect to a generate URL that would succeed is not followed
    app.card().set_redirect(Some(app.card().url(HEALTH)));
    let got = app.post(&app.city(), "/api/v1/transcode", &body).await;
    assert_err(&got, 502, "5001", "卡管系统");
    assert_eq!(app.card().calls(), 1, "the redirect was followed");
    app.card().set_redirect(None);
    // ten MiB is cut off at 256 KiB
    app.card().set_huge(10 * 1024 * 1024);
    let body = json!({"cityNo": "340100", "qrCodeUrl": app.qr(ZHANG).await, "targetType": HEALTH});
    let got = app.post(&app.city(), "/api/v1/transcode", &body).await;
    assert_err(&got, 502, "5001", "256KB");
    assert!(
        app.card().huge_sent() < 8 * 1024 * 1024,
        "the whole answer was read: {}",
        app.card().huge_sent()
    );
}

#[tokio::test]
async fn a_slow_loris_is_closed_by_the_header_timeout_while_others_are_served() {
    let app = spawn_with(|s| s.header_timeout = Duration::from_millis(300)).await;
    let addr = app.city_node().addr;
    let mut loris = tokio::net::TcpStream::connect(addr).await.unwrap();
    loris
        .write_all(b"POST /api/v1/decode HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // a normal request is served meanwhile
    let (s, _) = app
        .post(
            &app.city(),
            CONFIG_PATH,
            &json!({"cityNo": "340100", "targetType": HEALTH}),
        )
        .await;
    assert_eq!(s, 200);
    // the slow one is closed (the server may send a 408 first)
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(WAIT, loris.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the slow connection is still open");
}

#[tokio::test]
async fn too_many_requests_in_flight_for_a_service_get_503_4029() {
    let app = spawn_with(|s| s.max_inflight = 1).await;
    app.card().set_delay(Duration::from_millis(800));
    let city = app.city();
    let (a, b) = (app.qr(ZHANG).await, app.qr(ZHANG).await);
    let body = |qr: &str| json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    let first_body = body(&a);
    let first = app.post(&city, "/api/v1/transcode", &first_body);
    let second = async {
        while app.city_node().pending.is_empty() {
            tokio::task::yield_now().await;
        }
        app.post(&city, "/api/v1/transcode", &body(&b)).await
    };
    let (one, two) = tokio::join!(first, second);
    assert_eq!(one.0, 200, "{}", one.1);
    assert_eq!(
        (two.0, two.1["errCode"].as_str()),
        (503, Some("4029")),
        "{}",
        two.1
    );
    // other services are not starved
    let (s, _) = app
        .post(
            &city,
            CONFIG_PATH,
            &json!({"cityNo": "340100", "targetType": HEALTH}),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn decodes_and_refusals_are_audited_with_the_app_and_no_id_number() {
    let app = spawn().await;
    let city = app.city();
    let qr = app.qr(ZHANG).await;
    let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    let (s, b) = app.post(&city, "/api/v1/decode", &body).await;
    assert_eq!(s, 200, "{b}");
    let term = app.signers.get("terminal").unwrap();
    let got = app
        .send_as(term, "POST", &format!("{city}/api/v1/decode"), &body)
        .await;
    assert_eq!(got.0, 403);
    let (s, list) = app
        .call(
            "GET",
            &city,
            &format!("/admin/v1/audit?idcardNo={ZHANG}"),
            Vec::new(),
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let records = list["data"].as_array().unwrap();
    let allowed = records
        .iter()
        .find(|r| r["appId"] == "t-card" && r["service"] == "decode")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(allowed["errCode"], "200");
    assert!(!allowed["subjectId"].as_str().unwrap().is_empty());
    let (_, refused) = app
        .call("GET", &city, "/admin/v1/audit?appId=t-terminal", Vec::new())
        .await;
    let refused = refused["data"].as_array().unwrap();
    assert!(
        refused
            .iter()
            .any(|r| r["service"] == "decode" && r["errCode"] == "4013"),
        "{refused:?}"
    );
    let all = app
        .call("GET", &city, "/admin/v1/audit", Vec::new())
        .await
        .1
        .to_string();
    assert!(!all.contains(ZHANG), "an ID number in the audit: {all}");
}

/// Audit records are queued and written in batches; a graceful stop writes
/// what is queued (here the periodic write is a minute away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_queued_at_a_graceful_stop_is_there_after_a_restart() {
    let app = spawn_with(|s| s.audit_write = Duration::from_secs(60)).await;
    let city = app.city();
    let qr = app.qr(ZHANG).await;
    let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    let (s, b) = app.post(&city, "/api/v1/decode", &body).await;
    assert_eq!(s, 200, "{b}");
    let crate::helpers::App {
        p, settings, _dir, ..
    } = app;
    p.shutdown().await;
    let p = akm::start(settings, akm::Roles::All).await.unwrap();
    let all = akm::store::AuditFilter {
        limit: 100,
        ..Default::default()
    };
    for (node, app_id) in [(&p.city, "t-card"), (&p.province, CITY_APP)] {
        let records = node.as_ref().unwrap().store.audit(&all).unwrap();
        assert!(
            records
                .iter()
                .any(|r| r.service == "decode" && r.app_id == app_id && r.err_code == "200"),
            "{app_id}: {records:?}"
        );
    }
    p.shutdown().await;
}

#[tokio::test]
async fn a_city_whose_credentials_the_province_refuses_keeps_its_trades_and_raises_an_alert() {
    let app = spawn().await;
    let province = app.province();
    // an operator retires the city's secret at the province
    let (s, b) = app
        .call(
            "DELETE",
            &province,
            &format!("/admin/v1/apps/{CITY_APP}/secrets/bootstrap"),
            Vec::new(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = app
        .post(&app.city(), "/api/v1/callback", &trade("AUTH-1"))
        .await;
    assert_eq!(s, 200);
    // the alert shows in /readyz, unsigned
    let readyz = format!("{}/readyz", app.city());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r: Value = app
            .http
            .get(&readyz)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["alerts"].to_string().contains("province") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no alert: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the operator puts the secret back; the kept trade goes through
    register_city_app(&app.province_node().store).await;
    assert!(app.push().wait_for(1, WAIT).await, "the trade was not kept");
    let dlq = app
        .city_node()
        .bus
        .topics()
        .dlq(akm::bus::Topic::TradeReported);
    assert_eq!(
        app.city_node().bus.count(&dlq).await.unwrap(),
        0,
        "dead-lettered"
    );
}

#[tokio::test]
async fn with_auth_off_unsigned_requests_are_served() {
    let app = spawn_with(|s| s.auth = akm::config::AuthMode::Off).await;
    let url = format!("{}{CONFIG_PATH}", app.city());
    let got = app.send(app.http.post(&url).body(config_body())).await;
    assert_eq!(got.0, 200, "{}", got.1);
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_refused_by_the_body_timeout() {
    let app = spawn_with(|s| s.body_timeout = Duration::from_millis(300)).await;
    let mut slow = tokio::net::TcpStream::connect(app.city_node().addr)
        .await
        .unwrap();
    slow.write_all(b"POST /api/v1/decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"cityNo\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = slow.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&answer).contains("}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a body that never finishes");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400") && text.contains("4001"),
        "{text}"
    );
}
