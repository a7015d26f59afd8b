//! The routes of each role: every node serves the four services, the
//! config, apps and audit admin, and the probes; the province also serves
//! residents, cards and QR issuing. Every route but the probes, the
//! metrics and the API description passes the edge's checks (`edge.rs`).

use std::sync::Arc;

use axum::routing::{delete, get, post, put};
use axum::Router;

use super::edge::{edge, Edge};
use super::state::{NodeApi, ProvinceApi};
use super::{admin, dashboard, docs, services};

fn common(api: Arc<NodeApi>) -> Router {
    Router::new()
        .route("/api/v1/decode", post(services::decode))
        .route("/api/v1/transcode", post(services::transcode))
        .route("/api/v1/callback", post(services::callback))
        .route("/api/v1/transcode-config", post(services::config_query))
        .route("/admin/v1/transcode-configs", put(admin::put_config))
        .route("/admin/v1/apps", get(admin::list_apps))
        .route(
            "/admin/v1/apps/{appId}",
            put(admin::put_app).delete(admin::remove_app),
        )
        .route("/admin/v1/apps/{appId}/secrets", post(admin::add_secret))
        .route(
            "/admin/v1/apps/{appId}/secrets/{secretId}",
            delete(admin::retire_secret),
        )
        .route("/admin/v1/audit", get(admin::audit))
        .route("/admin/v1/stats", get(admin::stats))
        .route("/livez", get(services::livez))
        .route("/readyz", get(services::readyz))
        .route("/health", get(services::readyz))
        .route("/metrics", get(services::metrics))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/login", post(dashboard::login))
        .route("/dashboard/link", get(dashboard::link))
        .route("/dashboard/logout", post(dashboard::logout))
        .route("/dashboard/data", get(dashboard::data))
        .route("/dashboard/{asset}", get(dashboard::asset))
        .route("/docs", get(docs::ui))
        .route("/docs/{asset}", get(docs::asset))
        .with_state(api)
}

/// A city node's routes.
pub fn city(api: Arc<NodeApi>, edge_state: Arc<Edge>) -> Router {
    common(api)
        .route("/openapi.json", get(docs::city_document))
        .layer(axum::middleware::from_fn_with_state(edge_state, edge))
}

/// The province's routes.
pub fn province(api: Arc<NodeApi>, province: Arc<ProvinceApi>, edge_state: Arc<Edge>) -> Router {
    let own = Router::new()
        .route("/admin/v1/residents", put(admin::put_resident))
        .route(
            "/admin/v1/residents/{idcardNo}/cards/{targetType}",
            put(admin::put_card),
        )
        .route("/admin/v1/qrcodes", post(admin::issue))
        .with_state(province);
    common(api)
        .merge(own)
        .route("/openapi.json", get(docs::province_document))
        .layer(axum::middleware::from_fn_with_state(edge_state, edge))
}
