//! The operator dashboard: sign-in by form and by a one-time link, the
//! data behind the page, and the page itself in a real headless Chromium
//! (a screenshot is kept in `target/test-artifacts/dashboard.png`).

use std::process::Command;
use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::helpers::*;

/// Bounded: a request that never answers fails naming its URL, rather than
/// holding the test until the watchdog stops the whole binary.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The session cookie a sign-in answer sets (`name=value`), if any.
fn session_cookie(r: &reqwest::Response) -> Option<String> {
    let c = r.headers().get("set-cookie")?.to_str().ok()?;
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    c.split(';').next().map(str::to_string)
}

async fn login(base: &str, app: &str, secret: &str) -> reqwest::Response {
    client()
        .post(format!("{base}/dashboard/login"))
        .form(&[("appId", app), ("secret", secret)])
        .send()
        .await
        .unwrap()
}

async fn data(base: &str, cookie: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{base}/dashboard/data"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Transcodes at the city: `ok` answered 200 and one 4003.
async fn traffic(app: &App, ok: usize) {
    let qr = app.qr(ZHANG).await;
    for _ in 0..ok {
        let body = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
        let (_, b) = app.post(&app.city(), "/api/v1/transcode", &body).await;
        assert_eq!(b["errCode"], "200", "{b}");
    }
    let body =
        json!({"cityNo": "340100", "qrCodeUrl": app.expired_qr(ZHANG), "targetType": HEALTH});
    let (_, b) = app.post(&app.city(), "/api/v1/transcode", &body).await;
    assert_eq!(b["errCode"], "4003", "{b}");
}

/// The city's dashboard data once the stats consumer counted `n`
/// transcodes of Hefei (at most [`WAIT`]).
async fn counted(base: &str, cookie: &str, n: u64) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (s, d) = data(base, cookie).await;
        assert_eq!(s, 200, "{d}");
        let got = d["cities"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["cityNo"] == "340100000000"))
            .and_then(|c| c["transcodes"].as_u64());
        if got == Some(n) || tokio::time::Instant::now() > deadline {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_operator_signs_in_and_the_data_shows_the_node() {
    let app = spawn().await;
    let city = app.city();
    // not signed in: the login form, and no data
    let r = client()
        .get(format!("{city}/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"appId\"") && html.contains("name=\"secret\""));
    assert_eq!(data(&city, "akm_session=guess").await.0, 401);
    // a wrong secret, and a terminal's right one: refused, no cookie
    let r = login(&city, OPERATOR, "wrong-secret").await;
    assert_eq!(r.status(), 401);
    assert!(session_cookie(&r).is_none());
    assert!(r.text().await.unwrap().contains("4010"));
    let term = app
        .register_secret(&city, "dash-term", "terminal", json!({}))
        .await;
    assert_eq!(login(&city, "dash-term", &term).await.status(), 401);
    // the operator
    let r = login(&city, OPERATOR, OPERATOR_SECRET).await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r).expect("a session cookie");
    let page = client()
        .get(format!("{city}/dashboard"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/dashboard/chart.js") && !page.contains("http"),
        "no CDN"
    );
    traffic(&app, 2).await;
    let d = counted(&city, &cookie, 3).await;
    let hefei = d["cities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cityNo"] == "340100000000")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (hefei["transcodes"].as_u64(), hefei["failed"].as_u64()),
        (Some(3), Some(1)),
        "{d}"
    );
    assert_eq!(
        (
            d["errCodes"]["200"].as_u64(),
            d["errCodes"]["4003"].as_u64()
        ),
        (Some(2), Some(1)),
        "{d}"
    );
    assert_eq!(d["node"], "city");
    assert_eq!(d["readiness"]["ready"], true, "{d}");
    // each of the node's tasks, up
    let tasks = d["tasks"].as_array().unwrap();
    assert!(
        tasks
            .iter()
            .any(|t| t["name"] == "city/relay" && t["up"] == true),
        "{d}"
    );
    assert!(
        tasks
            .iter()
            .all(|t| t["name"].as_str().unwrap().starts_with("city/") && t["up"] == true),
        "{d}"
    );
    assert!(d["outbox"]["depth"].is_u64());
    let replays: Vec<&str> = d["dlq"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["replay"].as_str().unwrap())
        .collect();
    assert!(
        replays.contains(&"akm replay akm.trade.reported"),
        "{replays:?}"
    );
    // lag per held partition (its content: observability::each_node_counts_…)
    assert!(d["lag"].is_array(), "{d}");
    // the assets come from the binary
    for a in ["chart.js", "dashboard.js"] {
        let r = client()
            .get(format!("{city}/dashboard/{a}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{a}");
    }
    // signed out: the session is gone
    let r = client()
        .post(format!("{city}/dashboard/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(data(&city, &cookie).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_link_signs_in_once_and_not_after_it_expires() {
    let app = spawn().await;
    let city = app.city();
    let out = akm_as_operator(&["dashboard-link", "--url", &city, "--minutes", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        link.starts_with(&format!("{city}/dashboard/link?appId={OPERATOR}&expires=")),
        "{link}"
    );
    // tampered (the signature's last character changed, never to itself): refused
    let last = if link.ends_with('0') { '1' } else { '0' };
    let bad = format!("{}{last}", &link[..link.len() - 1]);
    let r = client().get(&bad).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client().get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r).expect("a session cookie");
    assert_eq!(data(&city, &cookie).await.0, 200);
    // a link works once
    assert_eq!(client().get(&link).send().await.unwrap().status(), 401);
    // an expired one (signed right) is refused
    let expired = chrono::Utc::now().timestamp_millis() - 1000;
    let sig = akm::signing::SignMethod::HmacSha256.sign(
        OPERATOR_SECRET,
        &akm::signing::dashboard_link_text(OPERATOR, expired),
    );
    let url = format!("{city}/dashboard/link?appId={OPERATOR}&expires={expired}&signature={sig}");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
}

/// The browser and Playwright, from the test script; outside CI a run
/// without them skips the browser.
fn browser() -> Option<(String, String)> {
    match (
        std::env::var("AKM_TEST_PYTHON"),
        std::env::var("AKM_TEST_CHROMIUM"),
    ) {
        (Ok(p), Ok(c)) => Some((p, c)),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "AKM_TEST_PYTHON and AKM_TEST_CHROMIUM must be set in CI"
            );
            eprintln!("no AKM_TEST_PYTHON/AKM_TEST_CHROMIUM: the browser test is skipped");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_and_sees_the_numbers() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let app = spawn().await;
    let (city, province) = (app.city(), app.province());
    traffic(&app, 4).await;
    let (s, b) = app.post(&city, "/api/v1/callback", &trade("DB-1")).await;
    assert_eq!(s, 200, "{b}");
    // wait until the city counted them (the page shows what is counted)
    let r = login(&city, OPERATOR, OPERATOR_SECRET).await;
    let cookie = session_cookie(&r).unwrap();
    counted(&city, &cookie, 5).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let run = |base: String, shot: std::path::PathBuf| {
        let (python, chromium, script) = (python.clone(), chromium.clone(), script.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(python)
                .arg(script)
                .args([base.as_str(), OPERATOR, OPERATOR_SECRET])
                .arg(shot)
                .env("AKM_TEST_CHROMIUM", chromium)
                .output()
                .unwrap()
        })
    };
    let out = run(city.clone(), shot.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(page["errors"], json!([]), "{page}");
    assert!(
        page["charts"].as_u64().is_some_and(|n| n >= 2),
        "charts drawn: {page}"
    );
    assert_eq!(
        page["cities"],
        json!([["340100000000", "5", "1", "0"]]),
        "{page}"
    );
    assert!(
        page["codes"]
            .as_array()
            .unwrap()
            .contains(&json!(["200", "4"])),
        "{page}"
    );
    assert!(
        page["codes"]
            .as_array()
            .unwrap()
            .contains(&json!(["4003", "1"])),
        "{page}"
    );
    assert!(
        page["latency"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0] == "transcode"),
        "{page}"
    );
    assert!(
        page["ready"][0][1].as_str().unwrap().contains("ready"),
        "{page}"
    );
    // each task of the city, shown up
    let tasks = page["tasks"].as_array().unwrap();
    assert!(
        tasks
            .iter()
            .any(|t| t[0] == "city/relay" && t[1] == "运行 up"),
        "{page}"
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot kept"
    );
    // the province's page counts the trade
    let r = login(&province, OPERATOR, OPERATOR_SECRET).await;
    let pcookie = session_cookie(&r).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while data(&province, &pcookie).await.1["cities"]
        .as_array()
        .is_none_or(|c| c.is_empty())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = run(province, dir.join("dashboard-province.png"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        page["cities"],
        json!([["340100000000", "0", "0", "1"]]),
        "{page}"
    );
}
