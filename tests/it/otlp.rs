//! OTLP export (cargo feature `otlp`; `scripts/test.sh` runs it with
//! `--features otlp`): `akm serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` sends
//! its spans over OTLP/HTTP to a collector (here a real HTTP server that
//! keeps what it receives), in the trace the caller's `traceparent` named.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;

use crate::helpers::*;

/// The (content type, body) of every POST a collector received.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A collector: what it receives at /v1/traces.
async fn collector() -> (String, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |h: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                let kind = h
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                keep.lock().unwrap().push((kind, body.to_vec()));
                ""
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_to_the_collector_in_the_caller_s_trace() {
    let (url, got) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&dir.path().join("settings"));
    apply_topics(&s).await;
    let mut env = crate::child::env(&s);
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", url));
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    let node = crate::child::serve("all", &dir.path().join("data"), &env, Default::default());
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let http = reqwest::Client::new();
    let r = signed(
        &http,
        Some(&operator()),
        &akm::clock::system(),
        "GET",
        &format!("{}/admin/v1/apps", node.city()),
        Vec::new(),
    )
    .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // the request span, in that trace: its 16 bytes in the protobuf body
    let id = hex::decode(trace).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let found = loop {
        let hit = got.lock().unwrap().iter().any(|(kind, body)| {
            kind == "application/x-protobuf"
                && body.windows(16).any(|w| w == id.as_slice())
                && body.windows(7).any(|w| w == b"request")
        });
        if hit || tokio::time::Instant::now() > deadline {
            break hit;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        found,
        "no exported span in trace {trace}: {} posts",
        got.lock().unwrap().len()
    );
}
