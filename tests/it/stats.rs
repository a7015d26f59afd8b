//! Statistics (统计考核): per-day counts of transcodes (by errCode) and
//! trades (by tradeState) per cityNo, targetType and sceneCode, the admin
//! query `GET /admin/v1/stats` and `akm stats`.

use serde_json::{json, Value};

use crate::helpers::*;

/// Today, as the statistics count days (UTC+8).
fn today() -> String {
    akm::domain::Day::of_ms(chrono::Utc::now().timestamp_millis()).to_string()
}

/// The rows of `base`'s stats query as (kind, cityNo, targetType,
/// sceneCode, outcome, count), sorted.
async fn rows(
    app: &App,
    base: &str,
    query: &str,
) -> Vec<(String, String, String, String, String, u64)> {
    let (s, b) = app
        .call("GET", base, &format!("/admin/v1/stats?{query}"), Vec::new())
        .await;
    assert_eq!((s, b["errCode"].as_str()), (200, Some("200")), "{b}");
    let mut out: Vec<_> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_str().unwrap().to_string();
            (
                f("kind"),
                f("cityNo"),
                f("targetType"),
                f("sceneCode"),
                f("outcome"),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Ask until the rows are `want` (the stats consumer counts after the
/// answer), at most [`WAIT`]; the last rows seen.
async fn rows_become(
    app: &App,
    base: &str,
    query: &str,
    want: &[(&str, &str, &str, &str, &str, u64)],
) -> Vec<(String, String, String, String, String, u64)> {
    let want: Vec<_> = want
        .iter()
        .map(|(k, c, t, s, o, n)| {
            (
                k.to_string(),
                c.to_string(),
                t.to_string(),
                s.to_string(),
                o.to_string(),
                *n,
            )
        })
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = rows(app, base, query).await;
        if got == want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcodes_and_trades_are_counted_once_per_day_city_target_scene_and_outcome() {
    let app = spawn().await;
    let (city, province) = (app.city(), app.province());
    let qr = app.qr(ZHANG).await;
    let transcode = |scene: Option<&str>, qr: &str| {
        let mut b = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
        if let Some(s) = scene {
            b["sceneCode"] = json!(s);
        }
        b
    };
    for (body, code) in [
        (transcode(Some("01002"), &qr), "200"),
        (transcode(Some("01002"), &qr), "200"),
        (transcode(None, &qr), "200"),
        (transcode(None, &app.expired_qr(ZHANG)), "4003"),
    ] {
        let (_, b) = app.post(&city, "/api/v1/transcode", &body).await;
        assert_eq!(b["errCode"], code, "{b}");
    }
    // a request that does not parse names no city: not counted
    let (s, _) = app
        .post(&city, "/api/v1/transcode", &json!({"qrCodeUrl": qr}))
        .await;
    assert_eq!(s, 400);
    // two trades, one of them reported twice
    for no in ["ST-1", "ST-2", "ST-1"] {
        let (s, b) = app.post(&city, "/api/v1/callback", &trade(no)).await;
        assert_eq!(s, 200, "{b}");
    }
    let day = today();
    let q = format!("from={day}&to={day}");
    let hefei = "340100000000";
    let got = rows_become(
        &app,
        &city,
        &q,
        &[
            ("transcode", hefei, HEALTH, "", "200", 1),
            ("transcode", hefei, HEALTH, "", "4003", 1),
            ("transcode", hefei, HEALTH, "01002", "200", 2),
        ],
    )
    .await;
    assert_eq!(got.len(), 3, "the city's counts: {got:?}");
    assert_eq!(got.iter().map(|r| r.5).sum::<u64>(), 4, "{got:?}");
    let got = rows_become(&app, &province, &q, &[("trade", hefei, HEALTH, "", "1", 2)]).await;
    assert_eq!(
        got,
        [(
            "trade".into(),
            hefei.into(),
            HEALTH.into(),
            String::new(),
            "1".into(),
            2
        )]
    );
    // once more, after everything settled: still exact
    assert!(app.push().wait_for(2, WAIT).await, "pushes");
    assert_eq!(rows(&app, &province, &q).await, got);
    // filters: another prefecture, other days
    assert!(rows(&app, &city, &format!("{q}&cityNo=3402"))
        .await
        .is_empty());
    assert_eq!(
        rows(&app, &city, &format!("{q}&cityNo=3401")).await.len(),
        3
    );
    assert!(rows(&app, &city, "from=20000101&to=20000131")
        .await
        .is_empty());
}

#[tokio::test]
async fn a_bad_stats_query_names_its_field_and_only_operators_ask() {
    let app = spawn().await;
    let city = app.city();
    for (query, field) in [
        ("to=20261129", "from"),
        ("from=2026-11-29&to=20261129", "from"),
        ("from=20261129&to=20261128", "to"),
        ("from=20250101&to=20261129", "to"),
        ("from=20261129&to=20261129&cityNo=35", "cityNo"),
    ] {
        let got = app
            .call(
                "GET",
                &city,
                &format!("/admin/v1/stats?{query}"),
                Vec::new(),
            )
            .await;
        assert_err(&got, 400, "4001", field);
    }
    let term = app.register(&city, "st-term", "terminal", json!({})).await;
    let got = app
        .send_as(
            &term,
            "GET",
            &format!("{city}/admin/v1/stats?from=20261129&to=20261129"),
            &Value::Null,
        )
        .await;
    assert_eq!(got.0, 403, "{}", got.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akm_stats_prints_the_counts_as_a_table() {
    let app = spawn().await;
    let city = app.city();
    let qr = app.qr(ZHANG).await;
    let body =
        json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "sceneCode": "01002"});
    let (_, b) = app.post(&city, "/api/v1/transcode", &body).await;
    assert_eq!(b["errCode"], "200", "{b}");
    let day = today();
    let q = format!("from={day}&to={day}");
    rows_become(
        &app,
        &city,
        &q,
        &[("transcode", "340100000000", HEALTH, "01002", "200", 1)],
    )
    .await;
    let out = akm_as_operator(&["stats", "--url", &city, "--city-no", "3401"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "day",
            "kind",
            "cityNo",
            "targetType",
            "sceneCode",
            "outcome",
            "count"
        ]
    );
    assert_eq!(
        lines[1],
        [
            day.as_str(),
            "transcode",
            "340100000000",
            HEALTH,
            "01002",
            "200",
            "1"
        ]
    );
    assert_eq!(lines[2], ["total", "transcode", "200", "1"]);
    // a bad day is refused with the envelope, and a non-zero exit
    let out = akm_as_operator(&["stats", "--url", &city, "--from", "2026-11-29"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("4001"));
}
