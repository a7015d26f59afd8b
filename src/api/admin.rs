//! Admin API (SPEC §7): residents, fused cards, QR issuing (province) and
//! transcode configs (both roles). Guarded by `admin_token` when set.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::envelope::Envelope;
use super::fields::{bounded, Fields};
use crate::domain::resident::{self, FusedCard, QrGrant, Resident, TranscodeConfig};
use crate::domain::{mask, CityNo, QrToken, SceneCode, TargetType};
use crate::error::ApiError;
use crate::node::Node;

/// Require `Authorization: Bearer <admin_token>` when a token is configured.
pub async fn guard(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    if let Some(token) = &node.settings.admin_token {
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return ApiError::Unauthorized("管理接口需要有效的Authorization: Bearer令牌")
                .into_response();
        }
    }
    next.run(req).await
}

/// `PUT /admin/v1/residents`
pub async fn put_resident(
    State(node): State<Arc<Node>>,
    f: Fields,
) -> Result<Envelope<Resident>, ApiError> {
    f.require_all(&[
        &["idcardNo"],
        &["name"],
        &["userPhone"],
        &["healthLevel"],
        &["dataSource"],
    ])?;
    let r = Resident {
        idcard_no: resident::idcard_no(f.req("idcardNo")?)?,
        name: bounded("name", f.req("name")?, 64)?.to_string(),
        user_phone: resident::user_phone(f.req("userPhone")?)?,
        health_level: resident::health_level(f.req("healthLevel")?)?,
        data_source: resident::data_source(f.req("dataSource")?)?,
        universal_auth: f
            .opt_bool("universalAuth")?
            .ok_or(ApiError::MissingField("universalAuth"))?,
    };
    node.store.put_resident(&r)?;
    node.store.sync().await?;
    tracing::info!(idcard = %mask::id(&r.idcard_no), "resident saved");
    Ok(Envelope::ok(r, "保存成功"))
}

/// `PUT /admin/v1/residents/{idcardNo}/cards/{targetType}`
pub async fn put_card(
    State(node): State<Arc<Node>>,
    Path((idcard, target)): Path<(String, String)>,
    f: Fields,
) -> Result<Envelope<FusedCard>, ApiError> {
    let idcard = resident::idcard_no(&idcard)?;
    let target = TargetType::parse(&target)?;
    if node.store.resident(&idcard)?.is_none() {
        return Err(ApiError::bad("idcardNo", "居民不存在，请先创建居民"));
    }
    let card = FusedCard {
        target_id: crate::domain::TargetId::parse(f.req("targetId")?)?
            .as_str()
            .to_string(),
        target_object: f.opt_json_string("targetObject")?.unwrap_or_default(),
    };
    node.store.put_card(&idcard, &target, &card)?;
    node.store.sync().await?;
    Ok(Envelope::ok(card, "保存成功"))
}

/// Answer of QR issuing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Issued {
    pub qr_code_url: String,
    pub expires_at: String,
}

/// Issue a QR token for a resident (亮码); used by the API and the demo.
pub fn issue_qr(
    node: &Node,
    idcard: &str,
    city: &CityNo,
    auth_type: String,
    auth_object: String,
    ttl_s: u64,
    is_self: bool,
) -> Result<Issued, ApiError> {
    if node.store.resident(idcard)?.is_none() {
        return Err(ApiError::bad("idcardNo", "居民不存在"));
    }
    let token = QrToken::generate();
    let expires_at = Node::now_ms() + (ttl_s as i64) * 1000;
    let grant = QrGrant {
        idcard_no: idcard.to_string(),
        city_no: city.to_string(),
        auth_type,
        auth_object,
        is_self,
        expires_at,
    };
    node.store.put_qr(&token, &grant)?;
    Ok(Issued {
        qr_code_url: token.url(city),
        expires_at: beijing_time(expires_at),
    })
}

/// RFC 3339 in Beijing time (+08:00).
fn beijing_time(ms: i64) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match chrono::FixedOffset::east_opt(8 * 3600) {
        Some(tz) => utc.with_timezone(&tz).to_rfc3339(),
        None => utc.to_rfc3339(),
    }
}

/// `POST /admin/v1/qrcodes`
pub async fn issue(State(node): State<Arc<Node>>, f: Fields) -> Result<Envelope<Issued>, ApiError> {
    let idcard = resident::idcard_no(f.req("idcardNo")?)?;
    let city = match f.opt("cityNo")? {
        Some(c) => CityNo::parse(c)?,
        None => CityNo::province(),
    };
    let auth_type = resident::auth_type(f.opt("authType")?.unwrap_or("2"))?;
    let auth_object = bounded("authObject", f.opt("authObject")?.unwrap_or(""), 128)?.to_string();
    let ttl = f
        .opt_u64("ttlSeconds")?
        .unwrap_or(node.settings.qr_ttl_seconds);
    if ttl == 0 || ttl > 86_400 {
        return Err(ApiError::bad("ttlSeconds", "应在1至86400秒之间"));
    }
    let is_self = f.opt_bool("isSelf")?.unwrap_or(true);
    let issued = issue_qr(&node, &idcard, &city, auth_type, auth_object, ttl, is_self)?;
    node.store.sync().await?;
    Ok(Envelope::ok(issued, "亮码成功"))
}

/// `PUT /admin/v1/transcode-configs`
pub async fn put_config(
    State(node): State<Arc<Node>>,
    f: Fields,
) -> Result<Envelope<TranscodeConfig>, ApiError> {
    f.require_all(&[
        &["belongarea"],
        &["targetType"],
        &["targetName"],
        &["targetUrl"],
    ])?;
    let area = CityNo::parse(f.req("belongarea")?)
        .map_err(|e| ApiError::bad("belongarea", e.to_string()))?;
    let target = TargetType::parse(f.req("targetType")?)?;
    let url = f.req("targetUrl")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 512 {
        return Err(ApiError::bad("targetUrl", "应为http(s)地址"));
    }
    let scenes = f.opt_any(&["sceneCode", "senceCode"])?.unwrap_or("");
    let list = SceneCode::parse_list(scenes)?;
    let c = TranscodeConfig {
        belongarea: area.to_string(),
        target_name: bounded("targetName", f.req("targetName")?, 64)?.to_string(),
        target_type: target.to_string(),
        target_url: url.to_string(),
        scene_code: list
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
    };
    node.store.put_config(&c)?;
    node.store.sync().await?;
    Ok(Envelope::ok(c, "保存成功"))
}

/// `GET /health`: liveness with a little state.
pub async fn health(State(node): State<Arc<Node>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "role": node.role.as_str(),
        "pending": node.pending.len(),
        "outbox": node.store.outbox_len(),
    }))
}
