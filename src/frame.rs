//! Length-prefixed binary framing (big-endian `u32` length, then bytes),
//! shared by the records the store and the embedded log keep in sled.

/// Append a length-prefixed chunk.
pub fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Append string pairs (headers): a count, then each key and value.
pub fn put_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for (k, v) in pairs {
        put(out, k.as_bytes());
        put(out, v.as_bytes());
    }
}

/// Reads what [`put`] and [`put_pairs`] wrote; every method returns `None`
/// on truncated or malformed input.
#[derive(Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub fn string(&mut self) -> Option<String> {
        String::from_utf8(self.chunk()?.to_vec()).ok()
    }

    pub fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.u32()?;
        let mut out = Vec::with_capacity(n.min(64) as usize);
        for _ in 0..n {
            out.push((self.string()?, self.string()?));
        }
        Some(out)
    }
}
