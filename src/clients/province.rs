//! A city's calls to the province: decode, callback, transcode-config query.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{call, deliver, CallError, Delivery};
use crate::domain::resident::{Identity, TranscodeConfig};
use crate::domain::{CityNo, QrToken, SceneCode, TargetType};
use crate::events::TradeReported;
use crate::protocol::ErrCode;

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

impl ProvinceClient {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        ProvinceClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The province's decode (7.2). An error envelope comes back as
    /// [`CallError::Refused`] with the province's code and text.
    pub async fn decode(
        &self,
        city: &CityNo,
        token: &QrToken,
        target: &TargetType,
        scene: Option<SceneCode>,
        timeout: Duration,
    ) -> Result<Identity, CallError> {
        let mut body = json!({
            "cityNo": city.as_str(),
            "qrCodeUrl": token.url(city),
            "targetType": target.as_str(),
        });
        if let Some(s) = scene {
            body["sceneCode"] = json!(s.as_str());
        }
        let env =
            call::<_, Identity>(&self.http, &self.url("/api/v1/decode"), &body, timeout).await?;
        match (env.is_ok(), env.data) {
            (true, Some(id)) => Ok(id),
            (true, None) => Err(CallError::NoData),
            (false, _) => Err(CallError::Refused {
                code: env.err_code,
                msg: env.err_msg,
            }),
        }
    }

    /// The province's config query (7.5): `None` when it has none (4005) or
    /// does not know the type (4008).
    pub async fn config(
        &self,
        city: &CityNo,
        target: &TargetType,
        timeout: Duration,
    ) -> Result<Option<TranscodeConfig>, CallError> {
        let body = json!({"cityNo": city.as_str(), "targetType": target.as_str()});
        let env = call::<_, TranscodeConfig>(
            &self.http,
            &self.url("/api/v1/transcode-config"),
            &body,
            timeout,
        )
        .await?;
        match (env.code(), env.data) {
            (Some(ErrCode::Ok), Some(c)) => Ok(Some(c)),
            (Some(ErrCode::Ok), None) => Err(CallError::NoData),
            (Some(ErrCode::NoConfig | ErrCode::UnknownCode), _) => Ok(None),
            _ => Err(CallError::Refused {
                code: env.err_code,
                msg: env.err_msg,
            }),
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
        deliver(&self.http, &self.url("/api/v1/callback"), &body, timeout).await
    }
}
