//! The card-management system's generate-target-code call (SPEC §5).

use std::time::Duration;

use serde::Serialize;

use crate::api::envelope::Envelope;
use crate::domain::resident::TargetCode;
use crate::error::ApiError;

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
) -> Result<Vec<TargetCode>, ApiError> {
    let resp = http
        .post(url)
        .json(req)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                ApiError::Timeout("卡管系统未在时限内响应")
            } else {
                ApiError::CardSystem("无法连接卡管系统".into())
            }
        })?;
    let status = resp.status();
    let env: Envelope<Vec<TargetCode>> = resp.json().await.map_err(|e| {
        if e.is_timeout() {
            ApiError::Timeout("卡管系统未在时限内响应")
        } else {
            ApiError::CardSystem(format!("卡管系统应答格式错误（HTTP {}）", status.as_u16()))
        }
    })?;
    if !status.is_success() || !env.is_ok() {
        return Err(ApiError::CardSystem(format!(
            "{}（{}）",
            env.err_msg, env.err_code
        )));
    }
    Ok(env.data.unwrap_or_default())
}
