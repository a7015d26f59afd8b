//! `POST /api/v1/transcode-config` (spec 7.5): the config for a city and
//! target type, falling back city -> prefecture -> province (and, on a
//! city node, to the province's configs).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;

use super::envelope::Envelope;
use super::fields::Fields;
use crate::domain::resident::TranscodeConfig;
use crate::domain::{CityNo, TargetType};
use crate::error::ApiError;
use crate::node::Node;

pub async fn config_query(
    State(node): State<Arc<Node>>,
    f: Fields,
) -> Result<Envelope<TranscodeConfig>, ApiError> {
    const TARGET: &[&str] = &["targetType", "tradeType"];
    f.require_all(&[&["cityNo"], TARGET])?;
    let city = CityNo::parse(f.req("cityNo")?)?;
    let target = TargetType::parse(f.req_any(TARGET)?)?;
    let timeout = Duration::from_millis(node.settings.transcode_timeout_ms);
    let config = node
        .check_target(&city, &target, None, true, timeout)
        .await?
        .ok_or_else(|| ApiError::NoConfig {
            city: city.to_string(),
            target: target.to_string(),
        })?;
    Ok(Envelope::ok(config, "查询成功"))
}
