//! Messages to publish and records read back, with the compact binary form
//! the embedded log stores them in.

use crate::frame;

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    /// Explicit partition (reply routing); `None` hashes the key.
    pub partition: Option<u32>,
    pub key: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

/// A record read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
    /// The assignment its consumer read it under: a number, unique in the
    /// process, that changes whenever the consumer's partitions change (a
    /// rebalance, a new member). Work that must happen once per
    /// assignment of a partition (an owner catching up) keys on it.
    pub assignment: u64,
}

/// A new [`Record::assignment`] number, never handed out before in this
/// process.
pub fn new_assignment() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Record {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Message {
    pub fn new(topic: impl Into<String>, key: impl Into<Vec<u8>>, payload: Vec<u8>) -> Self {
        Message {
            topic: topic.into(),
            partition: None,
            key: key.into(),
            headers: Vec::new(),
            payload,
        }
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn to_partition(mut self, p: u32) -> Self {
        self.partition = Some(p);
        self
    }
}

/// Binary form of a log entry: timestamp, key, headers, payload.
pub(crate) fn encode_entry(ts: i64, m: &Message) -> Vec<u8> {
    encode_parts(ts, &m.key, &m.headers, &m.payload)
}

/// [`encode_entry`] of a message's parts.
pub(crate) fn encode_parts(
    ts: i64,
    key: &[u8],
    headers: &[(String, String)],
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 64);
    out.extend_from_slice(&ts.to_be_bytes());
    frame::put(&mut out, key);
    frame::put_pairs(&mut out, headers);
    frame::put(&mut out, payload);
    out
}

pub(crate) fn decode_entry(topic: &str, partition: u32, offset: u64, b: &[u8]) -> Option<Record> {
    let mut r = frame::Reader(b);
    let ts = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
    Some(Record {
        topic: topic.to_string(),
        partition,
        offset,
        timestamp_ms: ts,
        key: r.chunk()?.to_vec(),
        headers: r.pairs()?,
        payload: r.chunk()?.to_vec(),
        assignment: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_entries_round_trip() {
        let m = Message::new("t", b"k".to_vec(), vec![1, 2, 3])
            .header("traceId", "abc")
            .to_partition(3);
        let r = decode_entry("t", 1, 7, &encode_entry(42, &m)).unwrap();
        assert_eq!(
            (r.offset, r.timestamp_ms, &r.payload[..]),
            (7, 42, &[1u8, 2, 3][..])
        );
        assert_eq!(r.header("traceId"), Some("abc"));
        assert!(decode_entry("t", 0, 0, &[0, 0, 0, 9]).is_none());
    }
}
