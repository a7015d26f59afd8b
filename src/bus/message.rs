//! Messages to publish and records read back, with the compact binary form
//! the embedded log and the outbox store them in.

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

    /// Binary form (outbox): topic, partition, key, headers, payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 64);
        put(&mut out, self.topic.as_bytes());
        out.extend_from_slice(&self.partition.map_or(u32::MAX, |p| p).to_be_bytes());
        encode_body(&mut out, &self.key, &self.headers, &self.payload);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut r = Reader(b);
        let topic = String::from_utf8(r.chunk()?.to_vec()).ok()?;
        let p = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
        let (key, headers, payload) = decode_body(&mut r)?;
        Some(Message {
            topic,
            partition: (p != u32::MAX).then_some(p),
            key,
            headers,
            payload,
        })
    }
}

/// Binary form of a log entry: timestamp, key, headers, payload.
pub(crate) fn encode_entry(ts: i64, m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.payload.len() + 64);
    out.extend_from_slice(&ts.to_be_bytes());
    encode_body(&mut out, &m.key, &m.headers, &m.payload);
    out
}

pub(crate) fn decode_entry(topic: &str, partition: u32, offset: u64, b: &[u8]) -> Option<Record> {
    let mut r = Reader(b);
    let ts = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let (key, headers, payload) = decode_body(&mut r)?;
    Some(Record {
        topic: topic.to_string(),
        partition,
        offset,
        timestamp_ms: ts,
        key,
        headers,
        payload,
    })
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn encode_body(out: &mut Vec<u8>, key: &[u8], headers: &[(String, String)], payload: &[u8]) {
    put(out, key);
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (k, v) in headers {
        put(out, k.as_bytes());
        put(out, v.as_bytes());
    }
    put(out, payload);
}

type Body = (Vec<u8>, Vec<(String, String)>, Vec<u8>);

fn decode_body(r: &mut Reader<'_>) -> Option<Body> {
    let key = r.chunk()?.to_vec();
    let n = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
    let mut headers = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        let k = String::from_utf8(r.chunk()?.to_vec()).ok()?;
        let v = String::from_utf8(r.chunk()?.to_vec()).ok()?;
        headers.push((k, v));
    }
    let payload = r.chunk()?.to_vec();
    Some((key, headers, payload))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }

    fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_entries_round_trip() {
        let m = Message::new("t", b"k".to_vec(), vec![1, 2, 3])
            .header("traceId", "abc")
            .to_partition(3);
        assert_eq!(Message::from_bytes(&m.to_bytes()), Some(m.clone()));
        let r = decode_entry("t", 1, 7, &encode_entry(42, &m)).unwrap();
        assert_eq!(
            (r.offset, r.timestamp_ms, &r.payload[..]),
            (7, 42, &[1u8, 2, 3][..])
        );
        assert_eq!(r.header("traceId"), Some("abc"));
        assert!(Message::from_bytes(&[0, 0, 0, 9]).is_none());
    }
}
