//! A city's calls to the province: decode, callback, transcode-config query.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{deliver, Delivery};
use crate::api::envelope::Envelope;
use crate::domain::resident::{Identity, TranscodeConfig};
use crate::domain::{CityNo, QrToken, SceneCode, TargetType};
use crate::error::ApiError;
use crate::events::TradeReported;

/// The province as seen from a city.
#[derive(Debug, Clone)]
pub struct ProvinceClient {
    http: reqwest::Client,
    base: String,
}

/// Body of the callback forwarded to the province (spec 7.4 fields).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CallbackBody<'a> {
    city_no: &'a str,
    name: &'a str,
    idcard_no: &'a str,
    target_type: &'a str,
    target_id: &'a str,
    trade_time: &'a str,
    trade_no: &'a str,
    msg: &'a str,
    trade_state: &'a str,
}

fn unreachable(e: &reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout("省级安康码平台未在时限内响应")
    } else {
        ApiError::Province("无法连接省级安康码平台".into())
    }
}

impl ProvinceClient {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        ProvinceClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
        timeout: Duration,
    ) -> Result<Envelope<T>, ApiError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        resp.json::<Envelope<T>>().await.map_err(|e| {
            if e.is_timeout() {
                ApiError::Timeout("省级安康码平台未在时限内响应")
            } else {
                ApiError::Province(format!("省级平台应答格式错误（HTTP {}）", status.as_u16()))
            }
        })
    }

    /// The province's decode (7.2). Province 4xxx errors come back as they are;
    /// its 5xxx errors become 5002.
    pub async fn decode(
        &self,
        city: &CityNo,
        token: &QrToken,
        target: &TargetType,
        scene: Option<SceneCode>,
        timeout: Duration,
    ) -> Result<Identity, ApiError> {
        let mut body = json!({
            "cityNo": city.as_str(),
            "qrCodeUrl": token.url(city),
            "targetType": target.as_str(),
        });
        if let Some(s) = scene {
            body["sceneCode"] = json!(s.as_str());
        }
        let env: Envelope<Identity> = self.call("/api/v1/decode", body, timeout).await?;
        match (env.is_ok(), env.data) {
            (true, Some(id)) => Ok(id),
            (true, None) => Err(ApiError::Province("识读应答缺少data".into())),
            (false, _) if env.err_code.starts_with('4') => {
                Err(ApiError::relayed(&env.err_code, &env.err_msg))
            }
            (false, _) => Err(ApiError::Province(env.err_msg)),
        }
    }

    /// The province's config query (7.5): `None` when it has none (4005).
    pub async fn config(
        &self,
        city: &CityNo,
        target: &TargetType,
        timeout: Duration,
    ) -> Result<Option<TranscodeConfig>, ApiError> {
        let body = json!({"cityNo": city.as_str(), "targetType": target.as_str()});
        let env: Envelope<TranscodeConfig> =
            self.call("/api/v1/transcode-config", body, timeout).await?;
        match (env.err_code.as_str(), env.data) {
            ("200", Some(c)) => Ok(Some(c)),
            ("4005" | "4008", _) => Ok(None),
            (code, _) => Err(ApiError::Province(format!("{}（{code}）", env.err_msg))),
        }
    }

    /// Forward one trade report (7.4) and classify the answer.
    pub async fn callback(&self, t: &TradeReported, timeout: Duration) -> Delivery {
        let body = CallbackBody {
            city_no: &t.city_no,
            name: &t.name,
            idcard_no: &t.idcard_no,
            target_type: &t.target_type,
            target_id: &t.target_id,
            trade_time: &t.trade_time,
            trade_no: &t.trade_no,
            msg: &t.msg,
            trade_state: &t.trade_state,
        };
        deliver(
            &self.http,
            &format!("{}/api/v1/callback", self.base),
            &body,
            timeout,
        )
        .await
    }
}
