//! Push-gateway simulator: `POST /push` records a resident message (SPEC §5);
//! `GET /sim/pushes` lists them; `PUT /sim/mode` makes the next N pushes fail
//! with a given status.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

#[derive(Debug)]
struct PushState {
    pushes: Mutex<Vec<Value>>,
    /// Idempotency keys seen (a gateway drops a second push with one).
    keys: Mutex<std::collections::HashSet<String>>,
    /// Pushes dropped as doubles, and the keys they carried.
    dropped: Mutex<Vec<String>>,
    /// The `traceparent` of each push kept, as sent.
    traces: Mutex<Vec<String>>,
    unkeyed: AtomicU32,
    fail_next: AtomicU32,
    fail_status: AtomicU16,
    attempts: AtomicU32,
    count: watch::Sender<usize>,
}

/// A running push-gateway simulator.
#[derive(Debug, Clone)]
pub struct PushSim {
    pub addr: SocketAddr,
    state: Arc<PushState>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModeBody {
    #[serde(default)]
    fail_next: u32,
    #[serde(default = "default_status")]
    status: u16,
}

/// How many pushes the simulator keeps (and serves at `/sim/pushes`).
const KEEP: usize = 100;

fn default_status() -> u16 {
    503
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PushSim {
    /// Serve on `listener` until the runtime ends.
    pub fn start(listener: tokio::net::TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (count, _) = watch::channel(0);
        let state = Arc::new(PushState {
            pushes: Mutex::new(Vec::new()),
            keys: Mutex::new(std::collections::HashSet::new()),
            dropped: Mutex::new(Vec::new()),
            traces: Mutex::new(Vec::new()),
            unkeyed: AtomicU32::new(0),
            fail_next: AtomicU32::new(0),
            fail_status: AtomicU16::new(503),
            attempts: AtomicU32::new(0),
            count,
        });
        let app = Router::new()
            .route("/push", post(receive))
            .route("/sim/pushes", get(list))
            .route("/sim/mode", put(set_mode))
            .with_state(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "push simulator stopped");
            }
        });
        Ok(PushSim { addr, state })
    }

    /// The URL the notifier posts to.
    pub fn url(&self) -> String {
        format!("http://{}/push", self.addr)
    }

    /// The `traceparent` headers of the pushes kept (empty when none came).
    pub fn traces(&self) -> Vec<String> {
        lock(&self.state.traces).clone()
    }

    /// Pushes received so far.
    pub fn pushes(&self) -> Vec<Value> {
        lock(&self.state.pushes).clone()
    }

    /// The idempotency keys of every push delivered (not dropped).
    pub fn delivered_keys(&self) -> std::collections::HashSet<String> {
        lock(&self.state.keys).clone()
    }

    /// Pushes that came without an `Idempotency-Key`.
    pub fn unkeyed(&self) -> u32 {
        self.state.unkeyed.load(Ordering::SeqCst)
    }

    /// The idempotency keys of pushes dropped as doubles.
    pub fn dropped(&self) -> Vec<String> {
        lock(&self.state.dropped).clone()
    }

    /// Push attempts, failed ones included.
    pub fn attempts(&self) -> u32 {
        self.state.attempts.load(Ordering::SeqCst)
    }

    /// Fail the next `n` pushes with `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.state.fail_status.store(status, Ordering::SeqCst);
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Wait until at least `n` pushes arrived; false after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.state.count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

async fn receive(
    State(s): State<Arc<PushState>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    s.attempts.fetch_add(1, Ordering::SeqCst);
    let failing = s
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        let status = StatusCode::from_u16(s.fail_status.load(Ordering::SeqCst))
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (
            status,
            Json(json!({"code": status.as_u16(), "msg": "simulated failure"})),
        );
    }
    let key = headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if key.is_none() {
        s.unkeyed.fetch_add(1, Ordering::SeqCst);
    }
    if let Some(k) = &key {
        if !lock(&s.keys).insert(k.clone()) {
            // a double after a crash: accepted, not delivered again
            lock(&s.dropped).push(k.clone());
            return (
                StatusCode::OK,
                Json(json!({"code": 0, "msg": "duplicate ignored"})),
            );
        }
    }
    {
        // A simulator holds personal data too: only the last pushes.
        let mut p = lock(&s.pushes);
        p.push(body);
        if p.len() > KEEP {
            p.remove(0);
        }
        let mut t = lock(&s.traces);
        t.push(
            headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        );
        if t.len() > KEEP {
            t.remove(0);
        }
    }
    s.count.send_modify(|n| *n += 1);
    (StatusCode::OK, Json(json!({"code": 0, "msg": "ok"})))
}

async fn list(State(s): State<Arc<PushState>>) -> Json<Value> {
    Json(Value::Array(lock(&s.pushes).clone()))
}

async fn set_mode(State(s): State<Arc<PushState>>, Json(b): Json<ModeBody>) -> Json<Value> {
    s.fail_status.store(b.status, Ordering::SeqCst);
    s.fail_next.store(b.fail_next, Ordering::SeqCst);
    Json(json!({"code": 0, "msg": "ok"}))
}
