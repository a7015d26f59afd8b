//! The API description's handlers: `GET /openapi.json` (the role's
//! document, `openapi.rs`) and `GET /docs` with its vendored assets.
//! Unsigned, like the probes: it holds no data, only the contract.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

use super::openapi;

/// `GET /openapi.json` at the province.
pub async fn province_document() -> Response {
    Json(openapi::document(true)).into_response()
}

/// `GET /openapi.json` at a city.
pub async fn city_document() -> Response {
    Json(openapi::document(false)).into_response()
}

/// `GET /docs`
pub async fn ui() -> Html<&'static str> {
    Html(openapi::DOCS_HTML)
}

/// `GET /docs/{asset}`: swagger-ui's script and style, cached a day.
pub async fn asset(Path(name): Path<String>) -> Response {
    match openapi::asset(&name) {
        Some((kind, bytes)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
