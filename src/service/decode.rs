//! Decode (spec 7.2): parse the request, then resolve the identity behind a
//! QR token, locally (province) or through the province (city).

use std::time::Duration;

use crate::api::fields::Fields;
use crate::domain::resident::Identity;
use crate::domain::{CityNo, QrToken, SceneCode, TargetType};
use crate::error::ApiError;
use crate::node::Node;

/// The parsed fields common to decode and transcode.
#[derive(Debug, Clone)]
pub struct CodeQuery {
    pub city: CityNo,
    pub token: QrToken,
    pub target: TargetType,
    pub scene: Option<SceneCode>,
}

impl CodeQuery {
    /// Required: cityNo, qrCodeUrl, targetType; optional sceneCode (or senceCode).
    pub fn parse(f: &Fields) -> Result<Self, ApiError> {
        f.require_all(&[&["cityNo"], &["qrCodeUrl"], &["targetType"]])?;
        Ok(CodeQuery {
            city: CityNo::parse(f.req("cityNo")?)?,
            token: QrToken::from_url(f.req("qrCodeUrl")?)?,
            target: TargetType::parse(f.req("targetType")?)?,
            scene: f
                .opt_any(&["sceneCode", "senceCode"])?
                .map(SceneCode::parse)
                .transpose()?,
        })
    }
}

/// The identity for a query: the province reads its store; a city asks the
/// province's decode.
pub async fn identify(node: &Node, q: &CodeQuery, timeout: Duration) -> Result<Identity, ApiError> {
    match &node.province {
        Some(p) => {
            p.decode(&q.city, &q.token, &q.target, q.scene, timeout)
                .await
        }
        None => identify_local(node, q),
    }
}

fn identify_local(node: &Node, q: &CodeQuery) -> Result<Identity, ApiError> {
    let grant = node
        .store
        .live_qr(&q.token, Node::now_ms())?
        .ok_or(ApiError::QrExpired)?;
    let resident = node
        .store
        .resident(&grant.idcard_no)?
        .ok_or(ApiError::QrExpired)?;
    if !resident.universal_auth {
        return Err(ApiError::NoUniversalAuth);
    }
    let card = node.store.card(&resident.idcard_no, &q.target)?;
    let (target_id, target_object) = card
        .map(|c| (c.target_id, c.target_object))
        .unwrap_or_default();
    Ok(Identity {
        name: resident.name,
        idcard_no: resident.idcard_no,
        user_phone: resident.user_phone,
        is_self: if grant.is_self { "1" } else { "0" }.into(),
        auth_type: grant.auth_type,
        auth_object: grant.auth_object,
        health_level: resident.health_level,
        data_source: resident.data_source,
        target_type: q.target.to_string(),
        target_id,
        target_object,
    })
}
