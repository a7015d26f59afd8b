//! The four services of SPEC §7 and `/health`: each handler receives its
//! parsed request and calls one service.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;

use super::{ApiError, Body};
use crate::domain::resident::{Identity, TargetCode, TranscodeConfig};
use crate::protocol::Envelope;
use crate::service::decode::CodeQuery;
use crate::service::sources::ConfigQuery;
use crate::service::trade::{Outcome, TradeReport};
use crate::service::transcode::TranscodeInput;
use crate::service::ServiceError;

use super::state::NodeApi;

/// `POST /api/v1/decode` (7.2).
pub async fn decode(
    State(api): State<Arc<NodeApi>>,
    Body(q): Body<CodeQuery>,
) -> Result<Envelope<Identity>, ApiError> {
    Ok(Envelope::ok(api.decoder.decode(&q).await?, "识读成功"))
}

/// `POST /api/v1/transcode` (7.3): request-reply over the bus.
pub async fn transcode(
    State(api): State<Arc<NodeApi>>,
    Body(input): Body<TranscodeInput>,
) -> Result<Envelope<Vec<TargetCode>>, ApiError> {
    let (codes, msg) = api.transcode.transcode(input).await?;
    Ok(Envelope::ok(codes, msg))
}

/// `POST /api/v1/callback` (7.4): 200 only once the report is durable.
pub async fn callback(
    State(api): State<Arc<NodeApi>>,
    Body(t): Body<TradeReport>,
) -> Result<Envelope<()>, ApiError> {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    Ok(match api.trades.accept(&t, &trace).await? {
        Outcome::New => Envelope::done("消息回传成功"),
        Outcome::Duplicate => Envelope::done("重复的消息回传（该tradeNo已接收），已忽略"),
    })
}

/// `POST /api/v1/transcode-config` (7.5): city -> prefecture -> province
/// (and, on a city node, the province's configs).
pub async fn config_query(
    State(api): State<Arc<NodeApi>>,
    Body(q): Body<ConfigQuery>,
) -> Result<Envelope<TranscodeConfig>, ApiError> {
    let config = api
        .configs
        .check_target(&q.city, &q.target, None, true, api.decoder.timeout)
        .await?
        .ok_or(ServiceError::NoConfig {
            city: q.city,
            target: q.target,
        })?;
    Ok(Envelope::ok(config, "查询成功"))
}

/// `GET /health`: liveness with a little state.
pub async fn health(State(api): State<Arc<NodeApi>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "role": api.role,
        "pending": api.transcode.pending.len(),
        "outbox": api.admin.store.outbox_len(),
    }))
}
