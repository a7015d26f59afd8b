//! `POST /api/v1/decode` (spec 7.2): the resident behind a shown QR code.
//! The province checks the target and answers from its store; a city parses
//! the request and proxies it to the province, relaying its answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;

use super::envelope::Envelope;
use super::fields::Fields;
use crate::domain::mask;
use crate::domain::resident::Identity;
use crate::error::ApiError;
use crate::node::Node;
use crate::service::decode::{identify, CodeQuery};

pub async fn decode(
    State(node): State<Arc<Node>>,
    f: Fields,
) -> Result<Envelope<Identity>, ApiError> {
    let q = CodeQuery::parse(&f)?;
    let timeout = Duration::from_millis(node.settings.transcode_timeout_ms);
    // A city proxies decode to the province, which checks the target and
    // scene itself; checking here too would cost a province round trip.
    if node.province.is_none() {
        node.check_target(&q.city, &q.target, q.scene, false, timeout)
            .await?;
    }
    let who = identify(&node, &q, timeout).await?;
    tracing::info!(role = node.role.as_str(), city = %q.city, target = %q.target, token = %q.token, idcard = %mask::id(&who.idcard_no), "decoded");
    Ok(Envelope::ok(who, "识读成功"))
}
