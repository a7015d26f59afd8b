//! The operator dashboard (`GET /dashboard`): one HTML page with its
//! script and chart library served from the binary (no CDN: government
//! networks are offline). An operator signs in with an operator app's id
//! and secret (the login form) or with a short-lived signed link (`akm
//! dashboard-link`); the page then reads `GET /dashboard/data` (today's
//! counts by city and errCode, the outbox, the DLQs with their replay
//! command, consumer lag, readiness and each task's state) and
//! `/metrics` (latency).

mod session;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;

pub use session::Sessions;

use super::services::{lag, readiness};
use super::state::NodeApi;
use crate::domain::Day;
use crate::service::stats::StatsQuery;
use crate::service::ServiceError;

const PAGE: &str = include_str!("../../../assets/dashboard/dashboard.html");
const LOGIN: &str = include_str!("../../../assets/dashboard/login.html");
const SCRIPT: &str = include_str!("../../../assets/dashboard/dashboard.js");
const CHART: &str = include_str!("../../../assets/chartjs/chart.umd.min.js");

/// The signed-in operator app, from the request's session cookie.
fn operator(api: &NodeApi, headers: &HeaderMap) -> Option<String> {
    let cookie = headers.get(header::COOKIE)?.to_str().ok()?;
    api.dashboard.app(session::token_of(cookie)?)
}

fn login_page(status: StatusCode, error: &str) -> Response {
    let note = if error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{error}</p>")
    };
    (status, Html(LOGIN.replace("<!--error-->", &note))).into_response()
}

/// Signed in: the session cookie, and on to the page.
fn signed_in(api: &NodeApi, app: String) -> Response {
    let token = api.dashboard.open(app);
    let cookie = format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={}",
        session::COOKIE,
        session::SESSION.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
}

/// `GET /dashboard`: the page when signed in, else the login form.
pub async fn page(State(api): State<Arc<NodeApi>>, headers: HeaderMap) -> Response {
    match operator(&api, &headers) {
        Some(_) => Html(PAGE).into_response(),
        None => login_page(StatusCode::OK, ""),
    }
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct Login {
    #[serde(rename = "appId", default)]
    app_id: String,
    #[serde(default)]
    secret: String,
}

/// `POST /dashboard/login` (form: `appId`, `secret` of an operator app).
pub async fn login(State(api): State<Arc<NodeApi>>, Form(f): Form<Login>) -> Response {
    match api.gate.operator_by_secret(f.app_id.trim(), &f.secret) {
        Ok(app) => signed_in(&api, app),
        Err(e) => refused(&e),
    }
}

fn refused(e: &ServiceError) -> Response {
    tracing::warn!(error = %e, "dashboard sign-in refused");
    let code = e.code();
    login_page(
        StatusCode::UNAUTHORIZED,
        &format!("{} {}", code.code(), code.render(&e.detail())),
    )
}

/// `GET /dashboard/link?appId=&expires=&signature=`: a link from `akm
/// dashboard-link`, good once and until it expires.
pub async fn link(
    State(api): State<Arc<NodeApi>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let expires = get("expires").parse::<i64>().unwrap_or_default();
    let max = session::LINK_MAX.as_millis() as i64;
    match api
        .gate
        .operator_by_link(get("appId"), expires, get("signature"), max)
    {
        Ok(app) if api.dashboard.first_use(get("signature")) => signed_in(&api, app),
        Ok(_) => refused(&ServiceError::Unauthorized("链接已使用")),
        Err(e) => refused(&e),
    }
}

/// `POST /dashboard/logout`
pub async fn logout(State(api): State<Arc<NodeApi>>, headers: HeaderMap) -> Response {
    if let Some(t) = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(session::token_of)
    {
        api.dashboard.close(t);
    }
    Redirect::to("/dashboard").into_response()
}

/// `GET /dashboard/data`: what the page shows, for the signed-in operator.
pub async fn data(State(api): State<Arc<NodeApi>>, headers: HeaderMap) -> Response {
    if operator(&api, &headers).is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "sign in at /dashboard"})),
        )
            .into_response();
    }
    let day = Day::of_ms(chrono::Utc::now().timestamp_millis());
    let q = StatsQuery {
        from: day,
        to: day,
        city: None,
    };
    let rows = crate::service::stats::query(&api.admin.store, &q).unwrap_or_default();
    // per city: transcodes, those not answered 200, trades
    let mut cities: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        let c = cities.entry(r.city_no.clone()).or_default();
        if r.kind == "trade" {
            c[2] += r.count;
        } else {
            c[0] += r.count;
            if r.outcome != "200" {
                c[1] += r.count;
            }
            *codes.entry(r.outcome.clone()).or_default() += r.count;
        }
    }
    let bus = &api.callbacks.bus;
    let prefix = bus.topics().prefix().to_string();
    let mut dlq = Vec::new();
    for d in bus.topics().declared() {
        if let Some(base) = d.name.strip_suffix(".dlq") {
            let records = bus.count(&d.name).await.ok();
            let base = base.strip_prefix(prefix.as_str()).unwrap_or(base);
            dlq.push(serde_json::json!({
                "topic": d.name, "records": records, "replay": format!("akm replay {base}"),
            }));
        }
    }
    let store = &api.admin.store;
    let (_, ready) = readiness(&api);
    Json(serde_json::json!({
        "node": api.role,
        "day": day.to_string(),
        "cities": cities.iter().map(|(city, [t, f, r])| serde_json::json!({
            "cityNo": city, "transcodes": t, "failed": f, "trades": r,
        })).collect::<Vec<_>>(),
        "errCodes": codes,
        "outbox": {
            "depth": store.outbox_len(),
            "oldestAgeSeconds": store.outbox_head_age().as_secs_f64(),
        },
        "dlq": dlq,
        "lag": lag(&api).await.into_iter().map(|(group, topic, partition, lag)| serde_json::json!({
            "group": group, "topic": topic, "partition": partition, "lag": lag,
        })).collect::<Vec<_>>(),
        "readiness": ready,
        "tasks": api.tasks.tasks(&format!("{}/", api.role)).into_iter().map(|(name, down)| serde_json::json!({
            "name": name, "up": down.is_none(), "why": down,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// `GET /dashboard/{asset}`: the page's script and the chart library.
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let body = match name.as_str() {
        "dashboard.js" => SCRIPT,
        "chart.js" => CHART,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        body,
    )
        .into_response()
}
