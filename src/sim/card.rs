//! Card-system simulator: `POST /cards/{targetType}` answers the generate
//! call (SPEC §5) from the cards configured for a resident; it can be told
//! to be slow or to fail (`PUT /sim/mode`), and cards are added with
//! `PUT /sim/cards`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::resident::TargetCode;

/// (idcardNo, targetType) -> [(targetId, targetObject)]
type Cards = HashMap<(String, String), Vec<(String, String)>>;

#[derive(Debug, Default)]
struct CardState {
    cards: Mutex<Cards>,
    delay_ms: AtomicU64,
    fail: AtomicBool,
    /// Answer every generate with a redirect here.
    redirect: Mutex<Option<String>>,
    /// Answer every generate with this many bytes, streamed.
    huge_bytes: AtomicU64,
    /// Bytes of huge answers the client actually took.
    huge_sent: Arc<AtomicU64>,
    calls: AtomicU64,
    last: Mutex<Option<Value>>,
}

/// A running card-system simulator.
#[derive(Debug, Clone)]
pub struct CardSim {
    pub addr: SocketAddr,
    state: Arc<CardState>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CardBody {
    idcard_no: String,
    target_type: String,
    target_id: String,
    #[serde(default)]
    target_object: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModeBody {
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    redirect: Option<String>,
    #[serde(default)]
    huge_bytes: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CardSim {
    /// Serve on `listener` until the runtime ends.
    pub fn start(listener: tokio::net::TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let state = Arc::new(CardState::default());
        let app = Router::new()
            .route("/cards/{targetType}", post(generate))
            .route("/sim/cards", put(add_card))
            .route("/sim/mode", put(set_mode))
            .with_state(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "card simulator stopped");
            }
        });
        Ok(CardSim { addr, state })
    }

    /// The generate URL for a target type (a config's `targetUrl`).
    pub fn url(&self, target_type: &str) -> String {
        format!("http://{}/cards/{target_type}", self.addr)
    }

    /// Give a resident a card of a type.
    pub fn add_card(
        &self,
        idcard_no: &str,
        target_type: &str,
        target_id: &str,
        target_object: &str,
    ) {
        lock(&self.state.cards)
            .entry((idcard_no.to_string(), target_type.to_string()))
            .or_default()
            .push((target_id.to_string(), target_object.to_string()));
    }

    pub fn set_delay(&self, d: Duration) {
        self.state
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set_fail(&self, fail: bool) {
        self.state.fail.store(fail, Ordering::SeqCst);
    }

    /// Answer every generate with `307 Location: url` (`None`: stop).
    pub fn set_redirect(&self, url: Option<String>) {
        *lock(&self.state.redirect) = url;
    }

    /// Answer every generate with `n` bytes of JSON-looking data, streamed
    /// without a length (0: stop).
    pub fn set_huge(&self, n: u64) {
        self.state.huge_bytes.store(n, Ordering::SeqCst);
    }

    /// How many bytes of huge answers the clients read.
    pub fn huge_sent(&self) -> u64 {
        self.state.huge_sent.load(Ordering::SeqCst)
    }

    /// Generate calls received.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The last generate body received.
    pub fn last_request(&self) -> Option<Value> {
        lock(&self.state.last).clone()
    }
}

async fn generate(
    State(s): State<Arc<CardState>>,
    Path(target_type): Path<String>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    s.calls.fetch_add(1, Ordering::SeqCst);
    *lock(&s.last) = Some(body.clone());
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(to) = lock(&s.redirect).clone() {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, to)],
        )
            .into_response();
    }
    let huge = s.huge_bytes.load(Ordering::SeqCst);
    if huge > 0 {
        let sent = s.huge_sent.clone();
        let chunk = bytes_of(64 * 1024);
        let chunks = huge / (64 * 1024);
        let stream = futures::stream::iter(0..chunks).map(move |_| {
            sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(chunk.clone())
        });
        return axum::body::Body::from_stream(stream).into_response();
    }
    if s.fail.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"flag": "500", "errCode": "5000", "errMsg": "卡管系统内部错误（模拟）"})),
        )
            .into_response();
    }
    let idcard = body
        .get("idcardNo")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cards = lock(&s.cards)
        .get(&(idcard.to_string(), target_type.clone()))
        .cloned()
        .unwrap_or_default();
    let codes: Vec<TargetCode> = cards
        .into_iter()
        .map(|(target_id, target_object)| TargetCode {
            target_qr_code: format!("{target_type}:{}", uuid::Uuid::new_v4().simple()),
            target_id,
            target_object,
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({"flag": "200", "errCode": "200", "errMsg": "生码成功", "data": codes})),
    )
        .into_response()
}

/// `n` bytes of filler.
fn bytes_of(n: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b' '; n])
}

async fn add_card(State(s): State<Arc<CardState>>, Json(b): Json<CardBody>) -> Json<Value> {
    lock(&s.cards)
        .entry((b.idcard_no, b.target_type))
        .or_default()
        .push((b.target_id, b.target_object));
    Json(json!({"flag": "200", "errCode": "200", "errMsg": "ok"}))
}

async fn set_mode(State(s): State<Arc<CardState>>, Json(b): Json<ModeBody>) -> Json<Value> {
    s.delay_ms.store(b.delay_ms, Ordering::SeqCst);
    s.fail.store(b.fail, Ordering::SeqCst);
    *lock(&s.redirect) = b.redirect;
    s.huge_bytes.store(b.huge_bytes, Ordering::SeqCst);
    Json(json!({"flag": "200", "errCode": "200", "errMsg": "ok"}))
}
