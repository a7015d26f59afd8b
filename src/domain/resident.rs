//! Residents, their fused cards and the QR grants shown for them: what the
//! province holds, and the identity decode discloses (spec 7.2). Personal
//! fields are masking types (`personal.rs`).

use serde::{Deserialize, Serialize};

use super::error::ParseError;
use super::personal::{IdcardNo, PersonName, Phone};

/// A one-character code field with a fixed set of values (healthLevel,
/// authType, dataSource); parsed against its allowed set.
fn code_in(
    field: &'static str,
    raw: &str,
    allowed: &[&str],
    hint: &str,
) -> Result<String, ParseError> {
    if allowed.contains(&raw) {
        Ok(raw.to_string())
    } else {
        Err(ParseError::malformed(field, hint.to_string()))
    }
}

/// healthLevel: 1 green, 2 yellow, 3 red.
pub fn health_level(raw: &str) -> Result<String, ParseError> {
    code_in(
        "healthLevel",
        raw,
        &["1", "2", "3"],
        "应为1（绿码）、2（黄码）或3（红码）",
    )
}

/// authType: 1 password, 2 face, 3 fingerprint, 4 third-party password.
pub fn auth_type(raw: &str) -> Result<String, ParseError> {
    code_in("authType", raw, &["1", "2", "3", "4"], "应为1、2、3或4")
}

/// dataSource: 1 Anhui Ankang code, 2 national health code.
pub fn data_source(raw: &str) -> Result<String, ParseError> {
    code_in(
        "dataSource",
        raw,
        &["1", "2"],
        "应为1（安徽省安康码）或2（国家健康码）",
    )
}

/// A resident as the province holds them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resident {
    pub idcard_no: IdcardNo,
    pub name: PersonName,
    pub user_phone: Phone,
    pub health_level: String,
    pub data_source: String,
    pub universal_auth: bool,
}

/// A resident's fused card of one target type (returned by decode).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FusedCard {
    pub target_id: String,
    pub target_object: String,
}

/// What a QR token stands for while it lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QrGrant {
    pub idcard_no: IdcardNo,
    pub city_no: String,
    pub auth_type: String,
    pub auth_object: String,
    pub is_self: bool,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// The identity decode discloses (spec 7.2 data, plus `isSelf`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub name: PersonName,
    pub idcard_no: IdcardNo,
    pub user_phone: Phone,
    pub is_self: String,
    pub auth_type: String,
    pub auth_object: String,
    pub health_level: String,
    pub data_source: String,
    pub target_type: String,
    pub target_id: String,
    pub target_object: String,
}

/// One target code a card system generated (spec 7.3 data item).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetCode {
    pub target_qr_code: String,
    pub target_id: String,
    #[serde(default)]
    pub target_object: String,
}

/// A transcode configuration (spec 7.5), keyed by belongarea + targetType.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TranscodeConfig {
    pub belongarea: String,
    pub target_name: String,
    pub target_type: String,
    pub target_url: String,
    /// Comma-separated scene codes; empty means every scene.
    pub scene_code: String,
}

impl TranscodeConfig {
    /// Whether this target serves the scene (no restriction when empty).
    pub fn serves(&self, scene: &crate::domain::SceneCode) -> bool {
        self.scene_code.trim().is_empty()
            || self
                .scene_code
                .split(',')
                .any(|s| s.trim() == scene.as_str())
    }
}
