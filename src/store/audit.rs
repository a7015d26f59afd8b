//! The audit trail (SPEC §9): append-only records of decodes, transcodes
//! and refused requests, keyed by time, kept for the retention period. A
//! record holds the resident's pseudonym, never an ID number.

use serde::{Deserialize, Serialize};

use super::{from_json, to_json, Store, StoreError};

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Unix ms.
    pub time: i64,
    pub app_id: String,
    pub service: String,
    pub city_no: String,
    pub target_type: String,
    pub scene_code: String,
    pub terminal_id: String,
    pub operator: String,
    /// The resident's pseudonym; empty when none.
    pub subject_id: String,
    pub err_code: String,
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject_id: Option<String>,
    pub app_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: usize,
}

fn key(time: i64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&(time.max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

impl Store {
    /// Append a record.
    pub fn append_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let seq = self.durable.generate_id()?;
        self.audit.insert(key(r.time, seq), to_json(r)?)?;
        Ok(())
    }

    /// The records that match, newest first.
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let lo = key(f.from_ms.unwrap_or(0), 0);
        let hi = key(f.to_ms.unwrap_or(i64::MAX), u64::MAX);
        let mut out = Vec::new();
        for item in self.audit.range(lo..=hi).rev() {
            let (_, v) = item?;
            let r: AuditRecord = from_json(&v)?;
            if f.subject_id.as_ref().is_some_and(|s| *s != r.subject_id)
                || f.app_id.as_ref().is_some_and(|a| *a != r.app_id)
            {
                continue;
            }
            out.push(r);
            if out.len() >= f.limit {
                break;
            }
        }
        Ok(out)
    }

    /// Remove records older than `before_ms`; how many.
    pub fn trim_audit(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.audit.range(..key(before_ms, 0)) {
            let (k, _) = item?;
            self.audit.remove(k)?;
            n += 1;
        }
        Ok(n)
    }
}
