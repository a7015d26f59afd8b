//! Admin API (SPEC §7): residents, fused cards, QR issuing (province) and
//! transcode configs (both roles). Guarded by `AKM_ADMIN_TOKEN` when set.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::{AdminToken, NodeApi, ProvinceApi};
use super::{ApiError, Body};
use crate::domain::resident::{self, FusedCard, Resident, TranscodeConfig};
use crate::domain::TargetType;
use crate::protocol::Envelope;
use crate::service::qr::{Issued, QrRequest};

/// Require `Authorization: Bearer <admin_token>` when a token is configured.
pub async fn guard(State(token): State<AdminToken>, req: Request, next: Next) -> Response {
    if let Some(token) = &token.0 {
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.expose()) {
            return ApiError::Unauthorized("管理接口需要有效的Authorization: Bearer令牌")
                .into_response();
        }
    }
    next.run(req).await
}

/// `PUT /admin/v1/residents`
pub async fn put_resident(
    State(api): State<Arc<ProvinceApi>>,
    Body(r): Body<Resident>,
) -> Result<Envelope<Resident>, ApiError> {
    api.admin.put_resident(&r).await?;
    Ok(Envelope::ok(r, "保存成功"))
}

/// `PUT /admin/v1/residents/{idcardNo}/cards/{targetType}`
pub async fn put_card(
    State(api): State<Arc<ProvinceApi>>,
    Path((idcard, target)): Path<(String, String)>,
    Body(card): Body<FusedCard>,
) -> Result<Envelope<FusedCard>, ApiError> {
    let idcard = resident::idcard_no(&idcard)?;
    let target = TargetType::parse(&target)?;
    api.admin.put_card(&idcard, &target, &card).await?;
    Ok(Envelope::ok(card, "保存成功"))
}

/// `POST /admin/v1/qrcodes`
pub async fn issue(
    State(api): State<Arc<ProvinceApi>>,
    Body(r): Body<QrRequest>,
) -> Result<Envelope<Issued>, ApiError> {
    Ok(Envelope::ok(api.qr.issue_durable(&r).await?, "亮码成功"))
}

/// `PUT /admin/v1/transcode-configs`
pub async fn put_config(
    State(api): State<Arc<NodeApi>>,
    Body(c): Body<TranscodeConfig>,
) -> Result<Envelope<TranscodeConfig>, ApiError> {
    api.admin.put_config(&c).await?;
    Ok(Envelope::ok(c, "保存成功"))
}
