//! The routes of each role: every node serves the four services, `/health`
//! and the config admin; the province also serves residents, cards and QR
//! issuing.

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;

use super::state::{AdminToken, NodeApi, ProvinceApi};
use super::{admin, fields::MAX_BODY, services};

fn common(api: Arc<NodeApi>, token: &AdminToken) -> Router {
    let admin_routes = Router::new()
        .route("/admin/v1/transcode-configs", put(admin::put_config))
        .layer(axum::middleware::from_fn_with_state(
            token.clone(),
            admin::guard,
        ));
    Router::new()
        .route("/api/v1/decode", post(services::decode))
        .route("/api/v1/transcode", post(services::transcode))
        .route("/api/v1/callback", post(services::callback))
        .route("/api/v1/transcode-config", post(services::config_query))
        .route("/health", get(services::health))
        .merge(admin_routes)
        .with_state(api)
}

/// A city node's routes.
pub fn city(api: Arc<NodeApi>, token: AdminToken) -> Router {
    common(api, &token).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// The province's routes.
pub fn province(api: Arc<NodeApi>, province: Arc<ProvinceApi>, token: AdminToken) -> Router {
    let own = Router::new()
        .route("/admin/v1/residents", put(admin::put_resident))
        .route(
            "/admin/v1/residents/{idcardNo}/cards/{targetType}",
            put(admin::put_card),
        )
        .route("/admin/v1/qrcodes", post(admin::issue))
        .layer(axum::middleware::from_fn_with_state(
            token.clone(),
            admin::guard,
        ))
        .with_state(province);
    common(api, &token)
        .merge(own)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}
