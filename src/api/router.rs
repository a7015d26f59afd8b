//! The routes of each role.

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;

use super::{admin, callback, config_query, decode, transcode};
use crate::node::{Node, Role};

/// All routes of a node of `node.role`.
pub fn router(node: Arc<Node>) -> Router {
    let api = Router::new()
        .route("/api/v1/decode", post(decode::decode))
        .route("/api/v1/transcode", post(transcode::transcode))
        .route("/api/v1/callback", post(callback::callback))
        .route("/api/v1/transcode-config", post(config_query::config_query))
        .route("/health", get(admin::health));
    let mut admin_routes =
        Router::new().route("/admin/v1/transcode-configs", put(admin::put_config));
    if node.role == Role::Province {
        admin_routes = admin_routes
            .route("/admin/v1/residents", put(admin::put_resident))
            .route(
                "/admin/v1/residents/{idcardNo}/cards/{targetType}",
                put(admin::put_card),
            )
            .route("/admin/v1/qrcodes", post(admin::issue));
    }
    let admin_routes = admin_routes.layer(axum::middleware::from_fn_with_state(
        node.clone(),
        admin::guard,
    ));
    api.merge(admin_routes)
        .layer(axum::extract::DefaultBodyLimit::max(
            super::fields::MAX_BODY,
        ))
        .with_state(node)
}
