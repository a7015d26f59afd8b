//! What an operator sees (issue 11): `GET /metrics`, where each node counts
//! what it answered, what it refused and for whom, how long the parties
//! behind it took, and the levels an operator alerts on (outbox, pending,
//! consumer lag); and the W3C trace that follows a trade over every hop.

use akm::signing::{SignMethod, Signer};
use serde_json::json;

use crate::helpers::*;

async fn scrape(app: &App, base: &str) -> String {
    let r = app
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// Scrape until `ready` holds (a call's metric is written once the call
/// returned, a moment after its effect is seen), at most [`WAIT`].
async fn scrape_until(app: &App, base: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = scrape(app, base).await;
        if ready(&text) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The value of one series (name with its labels, as written).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_counts_its_answers_refusals_parties_and_levels() {
    let app = spawn().await;
    let city = app.city();
    // a transcode: the card system behind the city's worker
    let qr = app.qr(ZHANG).await;
    let (s, b) = app
        .post(
            &city,
            "/api/v1/transcode",
            &json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH, "sceneCode": "01002"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // two new trades, a duplicate and a conflict
    for no in ["MET-1", "MET-2", "MET-1"] {
        let (s, b) = app.post(&city, "/api/v1/callback", &trade(no)).await;
        assert_eq!(s, 200, "{b}");
    }
    let mut other = trade("MET-2");
    other["msg"] = json!("另一笔");
    let (s, _) = app.post(&city, "/api/v1/callback", &other).await;
    assert_eq!(s, 409);
    // refused: a known app with a wrong secret, and an app no one knows
    for who in ["t-card", "stranger-1", "stranger-2"] {
        let wrong = Signer::new(who, "wrong-secret", SignMethod::HmacSha256);
        let (s, _) = app
            .send_as(
                &wrong,
                "POST",
                &format!("{city}/api/v1/callback"),
                &trade("MET-X"),
            )
            .await;
        assert_eq!(s, 401);
    }
    // both trades reach the resident: forwarded by the city, pushed by the province
    assert!(app.push().wait_for(2, WAIT).await);

    let forwarded = r#"akm_outbound_duration_seconds_count{party="province",outcome="ok"}"#;
    // positions are reported every second: the forwarder's shows up then
    let lagging = |t: &str| {
        t.lines()
            .any(|l| l.starts_with("akm_consumer_lag{") && l.contains("akm.trade.reported"))
    };
    // the city's own worker answered each request: directly, not over the
    // reply topics (the callback owner decided four: two new, a duplicate,
    // a conflict)
    let topics = app.city_node().bus.topics();
    let answered = |topic: akm::bus::Topic, route: &str| {
        format!(
            r#"akm_answers_total{{topic="{}",route="{route}"}}"#,
            topics.name(topic)
        )
    };
    let transcode_direct = answered(akm::bus::Topic::TranscodeReply, "direct");
    let callback_direct = answered(akm::bus::Topic::CallbackReply, "direct");
    let text = scrape_until(&app, &city, |t| {
        value(t, forwarded).is_some_and(|n| n >= 3.0)
            && lagging(t)
            && value(t, &callback_direct) == Some(4.0)
    })
    .await;
    assert_eq!(value(&text, &transcode_direct), Some(1.0), "{text}");
    assert_eq!(value(&text, &callback_direct), Some(4.0), "{text}");
    for topic in [
        akm::bus::Topic::TranscodeReply,
        akm::bus::Topic::CallbackReply,
    ] {
        assert_eq!(value(&text, &answered(topic, "topic")), None, "{text}");
    }
    for (series, want) in [
        (
            r#"akm_requests_total{service="callback",err_code="200"}"#,
            3.0,
        ),
        (
            r#"akm_requests_total{service="callback",err_code="4007"}"#,
            1.0,
        ),
        (
            r#"akm_requests_total{service="callback",err_code="4010"}"#,
            3.0,
        ),
        (
            r#"akm_requests_total{service="transcode",err_code="200"}"#,
            1.0,
        ),
        (
            r#"akm_request_duration_seconds_count{service="callback"}"#,
            7.0,
        ),
        (r#"akm_refusals_total{app="t-card",err_code="4010"}"#, 1.0),
        (r#"akm_refusals_total{app="unknown",err_code="4010"}"#, 2.0),
        (
            r#"akm_outbound_duration_seconds_count{party="card_system",outcome="ok"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    assert!(!text.contains("stranger"), "a stranger's app id is a label");
    // the city forwarded both trades (and decoded through the province)
    assert!(value(&text, forwarded).is_some_and(|n| n >= 3.0), "{text}");
    assert!(value(&text, "akm_flush_duration_seconds_count").is_some_and(|n| n > 0.0));
    for level in [
        "akm_pending_transcodes",
        "akm_outbox_depth",
        "akm_outbox_oldest_age_seconds",
    ] {
        assert!(value(&text, level).is_some(), "{level} in\n{text}");
    }
    // the forwarder's group holds the trade topic's partitions here
    assert!(lagging(&text), "{text}");

    // the province's own registry: its decode for the city, its pushes
    let pushed = r#"akm_outbound_duration_seconds_count{party="push_gateway",outcome="ok"}"#;
    let text = scrape_until(&app, &app.province(), |t| value(t, pushed) == Some(2.0)).await;
    assert_eq!(value(&text, pushed), Some(2.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"akm_requests_total{service="transcode",err_code="200"}"#
        ),
        None
    );
    assert!(value(
        &text,
        r#"akm_requests_total{service="decode",err_code="200"}"#
    )
    .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_system_s_trace_goes_through_the_city_and_the_province_to_the_push() {
    let app = spawn().await;
    let city = app.city();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let url = format!("{city}/api/v1/callback");
    let req = signed(
        &app.http,
        app.signer_for(&city, "/api/v1/callback"),
        &app.clock,
        "POST",
        &url,
        trade("TRC-1").to_string().into_bytes(),
    )
    .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"));
    let (s, b) = app.send(req).await;
    assert_eq!(s, 200, "{b}");
    // no traceparent: the city starts a trace of its own
    let (s, b) = app.post(&city, "/api/v1/callback", &trade("TRC-2")).await;
    assert_eq!(s, 200, "{b}");
    assert!(app.push().wait_for(2, WAIT).await);
    // city -> bus -> forwarder -> HTTP -> province -> bus -> notifier -> HTTP:
    // the push carries the card system's trace id, with a parent of its own
    let traces = app.push().traces();
    assert_eq!(traces.len(), 2, "{traces:?}");
    let ids: Vec<&str> = traces
        .iter()
        .map(|t| t.split('-').nth(1).unwrap_or_default())
        .collect();
    assert!(ids.contains(&trace), "{traces:?}");
    assert!(
        !traces.iter().any(|t| t.contains("00f067aa0ba902b7")),
        "{traces:?}"
    );
    let other = ids.iter().find(|t| **t != trace).unwrap();
    assert_eq!(other.len(), 32, "{traces:?}");
}
