//! The event structs; field names are the schemas' (camelCase).

use serde::{Deserialize, Serialize};

/// See `schemas/TranscodeRequested.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscodeRequested {
    pub request_id: String,
    pub trace_id: String,
    pub deadline_ms: i64,
    pub reply_partition: i32,
    pub city_no: String,
    pub qr_token: String,
    pub target_type: String,
    pub scene_code: String,
    pub target_object: String,
    /// The publishing node (`province` or `city-<cityNo>`).
    pub node: String,
}

/// One code in a reply (schema `TargetCode`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCodeRec {
    pub target_qr_code: String,
    pub target_id: String,
    pub target_object: String,
}

/// See `schemas/TranscodeReplied.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscodeReplied {
    pub request_id: String,
    pub trace_id: String,
    pub reply_partition: i32,
    /// The resident's pseudonym at this node, for the ingress's audit; empty when unknown.
    pub subject_id: String,
    pub err_code: String,
    /// The error's detail (never rendered text); on success the success text.
    pub detail: String,
    pub codes: Vec<TargetCodeRec>,
}

/// See `schemas/TradeReported.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeReported {
    pub trace_id: String,
    pub received_at: i64,
    pub city_no: String,
    pub name: String,
    pub idcard_no: String,
    pub target_type: String,
    pub target_id: String,
    pub trade_time: String,
    pub trade_no: String,
    pub msg: String,
    pub trade_state: String,
}

/// See `schemas/TradeRecorded.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeRecorded {
    pub trace_id: String,
    pub recorded_at: i64,
    pub subject_id: String,
    pub city_no: String,
    pub target_type: String,
    pub target_name: String,
    pub target_ref: String,
    pub trade_time: String,
    pub trade_no: String,
    pub msg: String,
    pub trade_state: String,
}

/// See `schemas/Notification.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub trace_id: String,
    pub trade_no: String,
    pub idcard_no: String,
    pub user_phone: String,
    pub title: String,
    pub content: String,
    pub city_no: String,
    pub target_type: String,
    pub trade_state: String,
    pub trade_time: String,
}

/// See `schemas/QrGranted.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QrGranted {
    pub trace_id: String,
    pub token: String,
    /// The sealed grant (personal data).
    pub grant: String,
    pub expires_at: i64,
}

/// See `schemas/ReferenceChanged.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceChanged {
    pub trace_id: String,
    pub scope: String,
    pub kind: String,
    pub key: String,
    /// The sealed change (personal data, secrets).
    pub change: String,
}

/// See `schemas/CallbackRequested.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackRequested {
    pub request_id: String,
    pub trace_id: String,
    pub deadline_ms: i64,
    pub reply_partition: i32,
    pub node: String,
    pub trade_key: String,
    pub city_no: String,
    /// Sealed.
    pub name: String,
    /// Sealed.
    pub idcard_no: String,
    pub target_type: String,
    /// Sealed.
    pub target_id: String,
    pub trade_time: String,
    pub trade_no: String,
    pub msg: String,
    pub trade_state: String,
}

/// See `schemas/CallbackReplied.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackReplied {
    pub request_id: String,
    pub trace_id: String,
    pub reply_partition: i32,
    pub err_code: String,
    pub detail: String,
    pub duplicate: bool,
}

/// See `schemas/StateChanged.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChanged {
    pub trace_id: String,
    pub scope: String,
    pub kind: String,
    pub key: String,
    pub trade_key: String,
    pub at: i64,
    /// Sealed (accepted), else empty.
    pub digest: String,
}

/// See `schemas/TranscodeAnswered.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscodeAnswered {
    pub id: String,
    pub trace_id: String,
    pub answered_at: i64,
    pub node: String,
    pub city_no: String,
    pub target_type: String,
    pub scene_code: String,
    pub err_code: String,
    /// How many answers this record stands for.
    pub count: i64,
}
