//! The card-management system's generate-target-code call (SPEC §5).

use std::time::Duration;

use serde::Serialize;

use super::{call, CallError};
use crate::domain::resident::TargetCode;

/// Body of the generate call.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest<'a> {
    pub city_no: &'a str,
    pub target_type: &'a str,
    pub scene_code: &'a str,
    pub name: &'a str,
    pub idcard_no: &'a str,
    pub user_phone: &'a str,
    pub target_object: &'a str,
}

/// Ask the card system at `url` for the resident's target codes, within `timeout`.
pub async fn generate(
    http: &reqwest::Client,
    url: &str,
    req: &GenerateRequest<'_>,
    timeout: Duration,
) -> Result<Vec<TargetCode>, CallError> {
    let (_, env) = call::<_, Vec<TargetCode>>(http, url, req, timeout, None).await?;
    if !env.is_ok() {
        return Err(CallError::Refused {
            code: env.err_code,
            msg: env.err_msg,
        });
    }
    Ok(env.data.unwrap_or_default())
}
