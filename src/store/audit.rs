//! The audit trail (SPEC §9): append-only records of decodes, transcodes
//! and refused requests, kept for the retention period. A record holds the
//! resident's pseudonym, never an ID number.
//!
//! Appending only queues the record in memory; [`Store::write_audit`]
//! (every `AKM_AUDIT_WRITE_MS`, at shutdown, and before every read) writes what
//! is queued as batches: one sled value per batch of at most 32 records
//! at most [`SPAN_MS`] apart, keyed by the newest record's time. One insert per
//! request used to cost 7 % of a transcode (sled splitting nodes under
//! time-ordered keys). A batch is stored deflated: sled holds what it
//! stores in memory well past its cache setting (its cache counts the
//! bytes on disk), so the audit's bytes were most of the benchmark's peak
//! RSS. Values written by older builds (plain JSON batches, and single
//! records) are still read.

use std::io::{Read, Write};

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use super::{from_json, Store, StoreError};

/// The widest time span of one stored batch: its records are at most this
/// much older than its key.
pub const SPAN_MS: i64 = 1000;

/// The most records one stored batch holds (a value of about 8 KiB). With
/// 256 (about 70 KiB) the benchmark's peak RSS grew from 240 to 383 MiB:
/// sled holds large values in memory well past its cache setting.
const BATCH_RECORDS: usize = 32;

/// Records kept queued while the store refuses writes; beyond this a
/// failed write drops the oldest (and logs how many).
const MAX_QUEUED: usize = 100_000;

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

impl AuditFilter {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.subject_id.as_ref().is_none_or(|s| *s == r.subject_id)
            && self.app_id.as_ref().is_none_or(|a| *a == r.app_id)
            && self.from_ms.is_none_or(|t| r.time >= t)
            && self.to_ms.is_none_or(|t| r.time <= t)
    }
}

/// Records appended and not yet written.
pub(super) type Queue = std::sync::Mutex<Vec<AuditRecord>>;

fn key(time: i64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&(time.max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn key_time(k: &[u8]) -> i64 {
    k.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u64::from_be_bytes(b) as i64)
}

/// The first byte of a deflated batch (a JSON value never starts with it).
const DEFLATED: u8 = 0;

/// A batch as stored: [`DEFLATED`], then the raw deflate of its JSON array.
///
/// The JSON is written whole first and then deflated in one call: the
/// serializer's many small writes, each straight into the encoder, cost a
/// deflate call apiece (a quarter of a transcode's CPU in a profile).
fn packed(run: &[AuditRecord]) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(run)?;
    let mut stored = Vec::with_capacity(1 + json.len() / 4);
    stored.push(DEFLATED);
    let mut out = DeflateEncoder::new(stored, Compression::fast());
    out.write_all(&json).map_err(serde_json::Error::io)?;
    Ok(out.finish().map_err(serde_json::Error::io)?)
}

/// A stored value: a deflated batch, a plain batch (a JSON array), or one
/// record, as older builds wrote them.
fn records_of(v: &[u8]) -> Result<Vec<AuditRecord>, StoreError> {
    match v.split_first() {
        Some((&DEFLATED, deflated)) => {
            let mut json = Vec::with_capacity(deflated.len() * 4);
            DeflateDecoder::new(deflated)
                .read_to_end(&mut json)
                .map_err(serde_json::Error::io)?;
            from_json(&json)
        }
        Some((b'[', _)) => from_json(v),
        _ => Ok(vec![from_json(v)?]),
    }
}

/// Split records (in time order) into runs at most `SPAN_MS` wide and
/// `BATCH_RECORDS` long.
fn batches(records: &[AuditRecord]) -> impl Iterator<Item = &[AuditRecord]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        let first = rest.first()?.time;
        let n = rest
            .iter()
            .take(BATCH_RECORDS)
            .position(|r| r.time - first > SPAN_MS)
            .unwrap_or(rest.len().min(BATCH_RECORDS));
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
}

/// Put records whose write failed back before those queued since, keeping
/// the newest `MAX_QUEUED`; how many were dropped.
fn requeue(mut failed: Vec<AuditRecord>, queue: &mut Vec<AuditRecord>) -> usize {
    failed.append(queue);
    let over = failed.len().saturating_sub(MAX_QUEUED);
    failed.drain(..over);
    *queue = failed;
    over
}

impl Store {
    /// Queue a record; it is written with the next batch.
    pub fn append_audit(&self, r: AuditRecord) {
        self.audit_queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r);
    }

    /// Write the queued records in batches; how many. On a failure the
    /// records stay queued for the next write, the newest `MAX_QUEUED` of
    /// them.
    pub fn write_audit(&self) -> Result<usize, StoreError> {
        let mut records = {
            let mut q = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *q)
        };
        if records.is_empty() {
            return Ok(0);
        }
        records.sort_by_key(|r| r.time);
        let written = (|| {
            let mut batch = sled::Batch::default();
            for run in batches(&records) {
                let newest = run.last().map_or(0, |r| r.time);
                batch.insert(&key(newest, self.durable.generate_id()?)[..], packed(run)?);
            }
            self.audit.apply_batch(batch)?;
            Ok(records.len())
        })();
        if written.is_err() {
            let mut q = self.audit_queue.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = requeue(records, &mut q);
            if dropped > 0 {
                tracing::error!(
                    dropped,
                    "the store refuses writes: the oldest queued audit records dropped"
                );
            }
        }
        self.noted(written)
    }

    /// The records that match, newest first (the queued ones written first).
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.write_audit()?;
        // a batch's key is its newest record's time, its oldest is at most SPAN_MS older
        let lo = key(f.from_ms.unwrap_or(0), 0);
        let hi = key(f.to_ms.unwrap_or(i64::MAX - SPAN_MS) + SPAN_MS, u64::MAX);
        let mut out: Vec<AuditRecord> = Vec::new();
        for item in self.audit.range(lo..=hi).rev() {
            let (k, v) = item?;
            // every record not read yet is at most as new as this batch's key
            let newest_unread = key_time(&k);
            if out.len() >= f.limit && out[f.limit - 1].time > newest_unread {
                break;
            }
            out.extend(records_of(&v)?.into_iter().filter(|r| f.matches(r)));
            out.sort_by_key(|r| std::cmp::Reverse(r.time));
        }
        out.truncate(f.limit);
        Ok(out)
    }

    /// Remove records older than `before_ms`; how many.
    pub fn trim_audit(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        // a batch keyed before `before_ms` holds only older records
        for item in self.audit.range(..key(before_ms, 0)) {
            let (k, v) = item?;
            n += records_of(&v).map_or(1, |r| r.len());
            self.audit.remove(k)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::to_json;
    use super::*;

    fn rec(time: i64, app: &str, subject: &str) -> AuditRecord {
        AuditRecord {
            time,
            app_id: app.into(),
            service: "transcode".into(),
            city_no: "340100".into(),
            target_type: "3401002".into(),
            scene_code: String::new(),
            terminal_id: String::new(),
            operator: String::new(),
            subject_id: subject.into(),
            err_code: "200".into(),
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::for_tests(dir.path());
        (dir, store)
    }

    #[tokio::test]
    async fn appended_records_are_written_in_batches_and_read_newest_first() {
        let (_dir, s) = store();
        // 2,000 records over 5 s, appended out of order at the edges
        for i in (0..2000).rev() {
            s.append_audit(rec(
                1_000_000 + i * 2 + 1,
                if i % 2 == 0 { "a" } else { "b" },
                "",
            ));
        }
        assert!(s.audit.is_empty(), "appending writes nothing");
        assert_eq!(s.write_audit().unwrap(), 2000);
        assert_eq!(s.write_audit().unwrap(), 0);
        // one value per 32 records (at most a second apart), not one per record
        assert!(s.audit.len() <= 70, "{} values", s.audit.len());
        let all = AuditFilter {
            limit: 3000,
            ..Default::default()
        };
        let got = s.audit(&all).unwrap();
        assert_eq!(got.len(), 2000);
        assert!(got.windows(2).all(|w| w[0].time > w[1].time));
        // a window across a batch's edge, with a limit and an app
        let f = AuditFilter {
            app_id: Some("a".into()),
            from_ms: Some(1_000_990),
            to_ms: Some(1_003_010),
            limit: 10,
            ..Default::default()
        };
        let times: Vec<i64> = s.audit(&f).unwrap().iter().map(|r| r.time).collect();
        assert_eq!(
            times,
            (0..10).map(|i| 1_003_009 - i * 4).collect::<Vec<_>>()
        );
        let f = AuditFilter {
            from_ms: Some(1_000_990),
            to_ms: Some(1_003_010),
            limit: 3000,
            ..Default::default()
        };
        let got = s.audit(&f).unwrap();
        assert_eq!(got.len(), 1010);
        assert_eq!((got[0].time, got[1009].time), (1_003_009, 1_000_991));
    }

    #[tokio::test]
    async fn a_read_sees_what_was_appended_and_older_single_records_still_read() {
        let (_dir, s) = store();
        // older builds' values: one record per key, and a plain JSON batch
        s.audit
            .insert(key(500, 1), to_json(&rec(500, "old", "s1")).unwrap())
            .unwrap();
        s.audit
            .insert(
                key(550, 2),
                to_json(&vec![rec(540, "older", "s1"), rec(550, "older", "s3")]).unwrap(),
            )
            .unwrap();
        s.append_audit(rec(700, "new", "s1"));
        s.append_audit(rec(600, "new", "s2"));
        let f = AuditFilter {
            subject_id: Some("s1".into()),
            limit: 10,
            ..Default::default()
        };
        let got: Vec<(i64, String)> = s
            .audit(&f)
            .unwrap()
            .into_iter()
            .map(|r| (r.time, r.app_id))
            .collect();
        assert_eq!(
            got,
            vec![
                (700, "new".to_string()),
                (540, "older".to_string()),
                (500, "old".to_string())
            ]
        );
    }

    /// A batch is stored deflated, and reads back as it was written. With
    /// a different resident in every record (a pseudonym is 64 hex digits
    /// of a keyed hash, the part that does not compress), a batch still
    /// takes at most a third of its JSON.
    #[tokio::test]
    async fn batches_are_stored_deflated_and_read_back_whole() {
        let (_dir, s) = store();
        let subject = |i: i64| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(i.to_be_bytes()));
        let written: Vec<AuditRecord> = (0..32)
            .map(|i| rec(2_000_000 + i * 7, "terminal-1", &subject(i)))
            .collect();
        for r in &written {
            s.append_audit(r.clone());
        }
        assert_eq!(s.write_audit().unwrap(), 32);
        assert_eq!(s.audit.len(), 1);
        let (_, stored) = s.audit.first().unwrap().unwrap();
        assert_eq!(stored[0], DEFLATED);
        let json = to_json(&written).unwrap();
        assert!(
            stored.len() * 3 <= json.len(),
            "{} bytes stored for {} bytes of JSON",
            stored.len(),
            json.len()
        );
        let mut back = s
            .audit(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        back.reverse();
        assert_eq!(back, written);
        // a damaged value is an error, not a panic or an empty answer
        s.audit
            .insert(key(3_000_000, 1), vec![DEFLATED, 0xff, 0x00, 0x13])
            .unwrap();
        let e = s
            .audit(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.is_corrupt(), "{e:?}");
    }

    #[test]
    fn records_of_a_failed_write_go_back_before_the_newer_and_the_oldest_go_first() {
        let failed: Vec<_> = (0..MAX_QUEUED as i64).map(|t| rec(t, "a", "")).collect();
        let mut queue: Vec<_> = (0..5).map(|t| rec(1_000_000 + t, "a", "")).collect();
        assert_eq!(requeue(failed, &mut queue), 5);
        assert_eq!(queue.len(), MAX_QUEUED);
        assert_eq!(queue[0].time, 5);
        assert_eq!(queue[MAX_QUEUED - 1].time, 1_000_004);
        let mut queue = vec![rec(9, "a", "")];
        assert_eq!(requeue(vec![rec(1, "a", "")], &mut queue), 0);
        assert_eq!(queue.iter().map(|r| r.time).collect::<Vec<_>>(), vec![1, 9]);
    }

    #[tokio::test]
    async fn trimming_removes_only_batches_wholly_before_the_cutoff() {
        let (_dir, s) = store();
        for t in [100, 200, 5000, 5100] {
            s.append_audit(rec(t, "a", ""));
        }
        s.write_audit().unwrap();
        s.audit
            .insert(key(300, 99), to_json(&rec(300, "old", "")).unwrap())
            .unwrap();
        assert_eq!(s.trim_audit(5050).unwrap(), 3);
        let left: Vec<i64> = s
            .audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|r| r.time)
            .collect();
        assert_eq!(left, vec![5100, 5000]);
    }
}
