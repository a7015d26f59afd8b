//! Schema-registry simulator: the part of the Confluent REST API the
//! platform and registry-aware readers (confluent-kafka's
//! `SchemaRegistryClient`) use, in memory: register and look up a
//! subject's schemas (ids shared across subjects for equal schemas), read
//! a schema by id, versions, and per-subject compatibility (BACKWARD is
//! checked with Avro's schema resolution). `PUT /sim/mode {"down": true}`
//! makes every call answer 503 (an outage).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Debug, Default)]
struct Registry {
    /// id - 1 -> the schema text as first registered
    schemas: Vec<String>,
    /// subject -> the ids of its versions, oldest first
    subjects: std::collections::BTreeMap<String, Vec<u32>>,
    /// subject -> compatibility level
    config: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Shared {
    registry: Mutex<Registry>,
    down: AtomicBool,
}

type St = State<Arc<Shared>>;

/// A running registry simulator.
#[derive(Debug, Clone)]
pub struct RegistrySim {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    s.registry.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

/// The canonical form of a schema text, if it parses.
fn canonical(text: &str) -> Option<String> {
    Schema::parse_str(text).ok().map(|s| s.canonical_form())
}

/// The body's schema text and its canonical form; `None` when it does
/// not parse.
fn schema_of(body: &Value) -> Option<(String, String)> {
    let text = body["schema"].as_str().unwrap_or_default().to_string();
    canonical(&text).map(|c| (text, c))
}

fn invalid() -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema")
}

impl Registry {
    fn id_of(&self, canonical_form: &str) -> Option<u32> {
        self.schemas
            .iter()
            .position(|s| self::canonical(s).as_deref() == Some(canonical_form))
            .map(|i| i as u32 + 1)
    }

    fn version(&self, subject: &str, id: u32) -> Option<usize> {
        self.subjects
            .get(subject)?
            .iter()
            .position(|x| *x == id)
            .map(|v| v + 1)
    }
}

async fn register(State(s): St, Path(subject): Path<String>, Json(body): Json<Value>) -> Response {
    let Some((text, canon)) = schema_of(&body) else {
        return invalid();
    };
    let mut r = lock(&s);
    if let Some(id) = r.id_of(&canon) {
        if r.version(&subject, id).is_some() {
            return Json(json!({"id": id})).into_response();
        }
    }
    // BACKWARD (the default): the new schema reads what the latest wrote
    let latest = r
        .subjects
        .get(&subject)
        .and_then(|v| v.last())
        .and_then(|id| r.schemas.get(*id as usize - 1))
        .and_then(|t| Schema::parse_str(t).ok());
    let level = r
        .config
        .get(&subject)
        .cloned()
        .unwrap_or_else(|| "BACKWARD".into());
    if let (Some(latest), Ok(new), "BACKWARD") = (latest, Schema::parse_str(&text), level.as_str())
    {
        if SchemaCompatibility::can_read(&latest, &new).is_err() {
            return error(
                StatusCode::CONFLICT,
                409,
                "Schema being registered is incompatible with an earlier schema",
            );
        }
    }
    let id = match r.id_of(&canon) {
        Some(id) => id,
        None => {
            r.schemas.push(text);
            r.schemas.len() as u32
        }
    };
    r.subjects.entry(subject).or_default().push(id);
    Json(json!({"id": id})).into_response()
}

async fn lookup(State(s): St, Path(subject): Path<String>, Json(body): Json<Value>) -> Response {
    let Some((_, canon)) = schema_of(&body) else {
        return invalid();
    };
    let r = lock(&s);
    if !r.subjects.contains_key(&subject) {
        return error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    }
    match r
        .id_of(&canon)
        .and_then(|id| Some((id, r.version(&subject, id)?)))
    {
        Some((id, version)) => Json(json!({
            "subject": subject, "id": id, "version": version, "schema": r.schemas[id as usize - 1],
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}

async fn subjects(State(s): St) -> Json<Value> {
    Json(json!(lock(&s).subjects.keys().collect::<Vec<_>>()))
}

async fn versions(State(s): St, Path(subject): Path<String>) -> Response {
    match lock(&s).subjects.get(&subject) {
        Some(v) => Json(json!((1..=v.len()).collect::<Vec<_>>())).into_response(),
        None => error(StatusCode::NOT_FOUND, 40401, "Subject not found"),
    }
}

async fn version(State(s): St, Path((subject, version)): Path<(String, String)>) -> Response {
    let r = lock(&s);
    let Some(ids) = r.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    };
    let v = match version.as_str() {
        "latest" => ids.len(),
        n => n.parse().unwrap_or(0),
    };
    match v.checked_sub(1).and_then(|i| ids.get(i)) {
        Some(id) => Json(json!({
            "subject": subject, "version": v, "id": id, "schema": r.schemas[*id as usize - 1],
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, 40402, "Version not found"),
    }
}

async fn by_id(State(s): St, Path(id): Path<u32>) -> Response {
    let r = lock(&s);
    match id.checked_sub(1).and_then(|i| r.schemas.get(i as usize)) {
        Some(text) => Json(json!({"schema": text})).into_response(),
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}

async fn set_config(
    State(s): St,
    Path(subject): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let level = body["compatibility"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !["BACKWARD", "NONE", "FORWARD", "FULL"].contains(&level.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            "Invalid compatibility level",
        );
    }
    lock(&s).config.insert(subject, level.clone());
    Json(json!({"compatibility": level})).into_response()
}

async fn get_config(State(s): St, Path(subject): Path<String>) -> Response {
    match lock(&s).config.get(&subject) {
        Some(level) => Json(json!({"compatibilityLevel": level})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            40408,
            "Subject does not have subject-level compatibility configured",
        ),
    }
}

async fn set_mode(State(s): St, Json(body): Json<Value>) -> Json<Value> {
    let down = body["down"].as_bool().unwrap_or(false);
    s.down.store(down, Ordering::Relaxed);
    Json(json!({"down": down}))
}

/// Answers 503 to everything but `/sim/mode` while down.
async fn outage(State(s): St, req: Request, next: Next) -> Response {
    if s.down.load(Ordering::Relaxed) && req.uri().path() != "/sim/mode" {
        return error(StatusCode::SERVICE_UNAVAILABLE, 50003, "down (simulated)");
    }
    next.run(req).await
}

impl RegistrySim {
    /// Serve on `listener` until the runtime ends.
    pub fn start(listener: tokio::net::TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/subjects", get(subjects))
            .route("/subjects/{subject}", post(lookup))
            .route("/subjects/{subject}/versions", get(versions).post(register))
            .route("/subjects/{subject}/versions/{version}", get(version))
            .route("/schemas/ids/{id}", get(by_id))
            .route("/config/{subject}", put(set_config).get(get_config))
            .route("/sim/mode", put(set_mode))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), outage))
            .with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "registry simulator stopped");
            }
        });
        Ok(RegistrySim { addr, shared })
    }

    /// The base URL (what `AKM_SCHEMA_REGISTRY_URL` takes).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Make every call fail with 503 (`true`), or serve again.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::Relaxed);
    }

    /// The subjects and their compatibility levels.
    pub fn subjects(&self) -> Vec<(String, Option<String>)> {
        let r = lock(&self.shared);
        r.subjects
            .keys()
            .map(|s| (s.clone(), r.config.get(s).cloned()))
            .collect()
    }
}
