//! A city's calls to the province: decode, callback, transcode-config query.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{call, deliver, Alerts, CallError, Delivery, Signing};
use crate::domain::resident::{Identity, TranscodeConfig};
use crate::domain::{CityNo, QrToken, SceneCode, TargetType};
use crate::events::TradeReported;
use crate::protocol::ErrCode;

/// The province as seen from a city.
#[derive(Debug, Clone)]
pub struct ProvinceClient {
    http: reqwest::Client,
    base: String,
    /// This city's app at the province (`AKM_PROVINCE_APP_ID`).
    signing: Option<Signing>,
    alerts: Alerts,
    metrics: crate::metrics::Metrics,
}

use crate::metrics::Party;

const PARTY: &str = "province";

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
    pub fn new(
        http: reqwest::Client,
        base: &str,
        signing: Option<Signing>,
        alerts: Alerts,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        ProvinceClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            signing,
            alerts,
            metrics,
        }
    }

    /// A 401/403 raises the alert (our credentials were refused); any
    /// other answer clears it.
    fn watch(&self, status: u16) {
        if status == 401 || status == 403 {
            self.alerts.raise(
                PARTY,
                format!("the province refused this city's credentials (HTTP {status}); check AKM_PROVINCE_APP_ID/AKM_PROVINCE_APP_SECRET and the app's scopes at the province"),
            );
        } else {
            self.alerts.clear(PARTY);
        }
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<crate::protocol::Envelope<T>, CallError> {
        let started = std::time::Instant::now();
        let answer = call(
            &self.http,
            &self.url(path),
            body,
            timeout,
            self.signing.as_ref(),
        )
        .await;
        let outcome = match &answer {
            Ok((_, env)) if !env.is_ok() => "refused",
            other => super::outcome_of(other),
        };
        self.metrics
            .outbound(Party::Province, outcome, started.elapsed());
        let (status, env) = answer?;
        self.watch(status);
        Ok(env)
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
        let env = self
            .post::<Identity>("/api/v1/decode", &body, timeout)
            .await?;
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
        let env = self
            .post::<TranscodeConfig>("/api/v1/transcode-config", &body, timeout)
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
        let started = std::time::Instant::now();
        // the province continues the trade's trace
        let d = crate::trace::within(
            t.trace_id.clone(),
            deliver(
                &self.http,
                &self.url("/api/v1/callback"),
                &body,
                timeout,
                self.signing.as_ref(),
                &[],
            ),
        )
        .await;
        self.metrics
            .outbound(Party::Province, d.outcome(), started.elapsed());
        match &d {
            Delivery::Misconfigured { reason } => self.alerts.raise(
                PARTY,
                format!("the province answers {reason} to this city's callbacks; forwarding retries until an operator fixes AKM_PROVINCE_URL or AKM_PROVINCE_APP_ID/AKM_PROVINCE_APP_SECRET"),
            ),
            Delivery::Done | Delivery::Reject { .. } => self.alerts.clear(PARTY),
            Delivery::Retry { .. } => {}
        }
        d
    }
}
