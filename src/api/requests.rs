//! Each service's request as a typed value, built by the [`Body`]
//! extractor from the JSON body (aliases included): handlers and services
//! only ever see parsed types. `akm import` reads residents with the same
//! parser as the admin API ([`parse_body`]).

use std::time::Duration;

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

use super::edge::Meta;
use super::fields::{Fields, MAX_BODY};
use super::ApiError;
use crate::domain::app::Service;
use crate::domain::app::{AppKind, Scopes};
use crate::domain::resident::{self, FusedCard, Resident, TranscodeConfig};
use crate::domain::{
    bounded, CityNo, IdcardNo, ParseError, PersonName, Phone, QrToken, SceneCode, TargetId,
    TargetType, TradeNo, TradeTime,
};
use crate::service::apps::AppInput;
use crate::service::decode::CodeQuery;
use crate::service::gate::{AuditEntry, Caller, Gate};
use crate::service::qr::QrRequest;
use crate::service::sources::ConfigQuery;
use crate::service::trade::TradeReport;
use crate::service::transcode::TranscodeInput;
use crate::service::ServiceError;

/// What a service request asks about, for the caller's scopes.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub service: Service,
    pub city: &'a CityNo,
    pub target: &'a TargetType,
    pub scene: Option<SceneCode>,
}

/// A request type parsed from a JSON object's fields.
pub trait FromFields: Sized {
    fn from_fields(f: &Fields) -> Result<Self, ParseError>;

    /// The cityNo and targetType the caller's scopes must cover (service
    /// requests); `None` for admin bodies.
    fn scope(&self) -> Option<Scope<'_>> {
        None
    }
}

/// The extractor: a body of at most 64 KiB, a JSON object, parsed as `T`,
/// then the caller's scopes and rate limit checked against it (4013,
/// 4029), before the handler runs.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: FromFields> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            ApiError::Body(format!("请求体超过{}KB上限", MAX_BODY / 1024)).into_response()
        })?;
        let fields = Fields::from_bytes(&bytes).map_err(IntoResponse::into_response)?;
        let t = T::from_fields(&fields).map_err(|e| ApiError::from(e).into_response())?;
        let (Some(caller), Some(gate), Some(meta)) = (
            parts.extensions.get::<Caller>(),
            parts.extensions.get::<Arc<Gate>>(),
            parts.extensions.get::<Meta>(),
        ) else {
            // Every route is behind the edge; without its caller, refuse.
            return Err(
                ApiError::from(ServiceError::Unauthorized("未经签名校验的请求")).into_response(),
            );
        };
        if let Some(scope) = t.scope() {
            if let Err(e) = gate.authorize(caller, Some(scope.city), Some(scope.target)) {
                if e.code() == crate::protocol::ErrCode::Forbidden {
                    gate.audit(AuditEntry {
                        app_id: &meta.app_id,
                        service: scope.service,
                        city: Some(scope.city),
                        target: Some(scope.target),
                        scene: scope.scene,
                        terminal_id: &meta.terminal_id,
                        operator: &meta.operator,
                        subject_id: "",
                        err_code: e.code().code(),
                    });
                    tracing::warn!(app_id = %meta.app_id, service = scope.service.as_str(), city = %scope.city, target = %scope.target, "request outside the caller's scopes refused");
                }
                return Err(ApiError::from(e).into_response());
            }
        }
        Ok(Body(t))
    }
}

/// Parse one JSON object (a body, or a line of an import file) as `T`.
pub fn parse_body<T: FromFields>(bytes: &[u8]) -> Result<T, ApiError> {
    let f = Fields::from_bytes(&axum::body::Bytes::copy_from_slice(bytes))?;
    Ok(T::from_fields(&f)?)
}

const SCENE: &[&str] = &["sceneCode", "senceCode"];
const TARGET: &[&str] = &["targetType", "tradeType"];

impl FromFields for CodeQuery {
    /// Required: cityNo, qrCodeUrl, targetType; optional sceneCode (or senceCode).
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        f.require_all(&[&["cityNo"], &["qrCodeUrl"], &["targetType"]])?;
        Ok(CodeQuery {
            city: CityNo::parse(f.req("cityNo")?)?,
            token: QrToken::from_url(f.req("qrCodeUrl")?)?,
            target: TargetType::parse(f.req("targetType")?)?,
            scene: f.opt_any(SCENE)?.map(SceneCode::parse).transpose()?,
        })
    }

    fn scope(&self) -> Option<Scope<'_>> {
        Some(Scope {
            service: Service::Decode,
            city: &self.city,
            target: &self.target,
            scene: self.scene,
        })
    }
}

impl FromFields for TranscodeInput {
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        Ok(TranscodeInput {
            query: CodeQuery::from_fields(f)?,
            target_object: f.opt_json_string("targetObject")?.unwrap_or_default(),
        })
    }

    fn scope(&self) -> Option<Scope<'_>> {
        self.query.scope().map(|s| Scope {
            service: Service::Transcode,
            ..s
        })
    }
}

impl FromFields for TradeReport {
    /// All nine fields are required; `tradeType` is an alias of `targetType`.
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        f.require_all(&[
            &["cityNo"],
            &["name"],
            &["idcardNo"],
            TARGET,
            &["targetId"],
            &["tradeTime"],
            &["tradeNo"],
            &["msg"],
            &["tradeState"],
        ])?;
        Ok(TradeReport {
            city: CityNo::parse(f.req("cityNo")?)?,
            name: PersonName::parse(f.req("name")?)?,
            idcard_no: IdcardNo::parse(f.req("idcardNo")?)?,
            target: TargetType::parse(f.req_any(TARGET)?)?,
            target_id: TargetId::parse(f.req("targetId")?)?,
            time: TradeTime::parse(f.req("tradeTime")?)?,
            trade_no: TradeNo::parse(f.req("tradeNo")?)?,
            msg: bounded("msg", f.req("msg")?, 500)?,
            state: bounded("tradeState", f.req("tradeState")?, 32)?,
        })
    }

    fn scope(&self) -> Option<Scope<'_>> {
        Some(Scope {
            service: Service::Callback,
            city: &self.city,
            target: &self.target,
            scene: None,
        })
    }
}

impl FromFields for ConfigQuery {
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        f.require_all(&[&["cityNo"], TARGET])?;
        Ok(ConfigQuery {
            city: CityNo::parse(f.req("cityNo")?)?,
            target: TargetType::parse(f.req_any(TARGET)?)?,
        })
    }

    fn scope(&self) -> Option<Scope<'_>> {
        Some(Scope {
            service: Service::ConfigQuery,
            city: &self.city,
            target: &self.target,
            scene: None,
        })
    }
}

impl FromFields for Resident {
    /// The one resident parser (admin API and `akm import`): every field required.
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        f.require_all(&[
            &["idcardNo"],
            &["name"],
            &["userPhone"],
            &["healthLevel"],
            &["dataSource"],
        ])?;
        Ok(Resident {
            idcard_no: IdcardNo::parse(f.req("idcardNo")?)?,
            name: PersonName::parse(f.req("name")?)?,
            user_phone: Phone::parse(f.req("userPhone")?)?,
            health_level: resident::health_level(f.req("healthLevel")?)?,
            data_source: resident::data_source(f.req("dataSource")?)?,
            universal_auth: f.req_bool("universalAuth")?,
        })
    }
}

impl FromFields for FusedCard {
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        Ok(FusedCard {
            target_id: TargetId::parse(f.req("targetId")?)?.as_str().to_string(),
            target_object: f.opt_json_string("targetObject")?.unwrap_or_default(),
        })
    }
}

impl FromFields for QrRequest {
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        let idcard_no = IdcardNo::parse(f.req("idcardNo")?)?;
        let city = match f.opt("cityNo")? {
            Some(c) => CityNo::parse(c)?,
            None => CityNo::province(),
        };
        let ttl = match f.opt_u64("ttlSeconds")? {
            Some(t) if t == 0 || t > 86_400 => {
                return Err(ParseError::malformed("ttlSeconds", "应在1至86400秒之间"))
            }
            t => t.map(Duration::from_secs),
        };
        Ok(QrRequest {
            idcard_no,
            city,
            auth_type: resident::auth_type(f.opt("authType")?.unwrap_or("2"))?,
            auth_object: bounded("authObject", f.opt("authObject")?.unwrap_or(""), 128)?,
            ttl,
            is_self: f.opt_bool("isSelf")?.unwrap_or(true),
        })
    }
}

impl FromFields for TranscodeConfig {
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        f.require_all(&[
            &["belongarea"],
            &["targetType"],
            &["targetName"],
            &["targetUrl"],
        ])?;
        let area = CityNo::parse(f.req("belongarea")?).map_err(|e| e.as_field("belongarea"))?;
        let target = TargetType::parse(f.req("targetType")?)?;
        let url = f.req("targetUrl")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 512 {
            return Err(ParseError::malformed("targetUrl", "应为http(s)地址"));
        }
        let list = SceneCode::parse_list(f.opt_any(SCENE)?.unwrap_or(""))?;
        Ok(TranscodeConfig {
            belongarea: area.to_string(),
            target_name: bounded("targetName", f.req("targetName")?, 64)?,
            target_type: target.to_string(),
            target_url: url.to_string(),
            scene_code: list
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        })
    }
}

impl FromFields for AppInput {
    /// `kind`, `cityNos`, `targetTypes`, `rateLimit` (per second; absent or 0 = none).
    fn from_fields(f: &Fields) -> Result<Self, ParseError> {
        let kind = AppKind::parse(f.req("kind")?)?;
        let city_nos = f.opt_strings("cityNos")?;
        let target_types = f.opt_strings("targetTypes")?;
        let rate = f.opt_u64("rateLimit")?.unwrap_or(0);
        let rate_limit =
            u32::try_from(rate).map_err(|_| ParseError::malformed("rateLimit", "过大"))?;
        Ok(AppInput {
            kind,
            scopes: Scopes::parse(&city_nos, &target_types)?,
            rate_limit,
        })
    }
}
