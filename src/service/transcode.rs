//! Transcode of one request (spec 7.3), as the transcoder worker runs it:
//! config and scene check, identity, then the card system, all within the
//! request's deadline.

use std::time::Duration;

use crate::clients::card::{self, GenerateRequest};
use crate::domain::resident::TargetCode;
use crate::domain::{CityNo, QrToken, SceneCode, TargetType};
use crate::error::ApiError;
use crate::events::TranscodeRequested;
use crate::node::Node;
use crate::service::decode::{identify, CodeQuery};

fn remaining(deadline_ms: i64) -> Result<Duration, ApiError> {
    let left = deadline_ms - Node::now_ms();
    if left <= 0 {
        Err(ApiError::Timeout("转码处理超时"))
    } else {
        Ok(Duration::from_millis(left as u64))
    }
}

/// Run one transcode request to its target codes.
pub async fn run(node: &Node, ev: &TranscodeRequested) -> Result<Vec<TargetCode>, ApiError> {
    // The event was parsed at the ingress; parse again, since it crossed the bus.
    let q = CodeQuery {
        city: CityNo::parse(&ev.city_no)?,
        token: QrToken::parse(&ev.qr_token)?,
        target: TargetType::parse(&ev.target_type)?,
        scene: (!ev.scene_code.is_empty())
            .then(|| SceneCode::parse(&ev.scene_code))
            .transpose()?,
    };
    let config = node
        .check_target(
            &q.city,
            &q.target,
            q.scene,
            true,
            remaining(ev.deadline_ms)?,
        )
        .await?
        .ok_or_else(|| ApiError::NoConfig {
            city: q.city.to_string(),
            target: q.target.to_string(),
        })?;
    let who = identify(node, &q, remaining(ev.deadline_ms)?).await?;
    let req = GenerateRequest {
        city_no: q.city.as_str(),
        target_type: q.target.as_str(),
        scene_code: q.scene.map_or("", |s| s.as_str()),
        name: &who.name,
        idcard_no: &who.idcard_no,
        user_phone: &who.user_phone,
        target_object: &ev.target_object,
    };
    card::generate(
        &node.http,
        &config.target_url,
        &req,
        remaining(ev.deadline_ms)?,
    )
    .await
}
