//! W3C trace context: the `traceparent` header
//! (`00-<32 hex trace id>-<16 hex parent id>-<flags>`) that carries a
//! trade's or a request's trace id over every hop: HTTP calls between the
//! parties (a city forwarding to the province, a worker asking the card
//! system or the push gateway) and records on the bus. The trace id is
//! the one the platform's events already carry (`traceId`); a hop gets a
//! new parent id.

/// The header's name, on HTTP and on bus records.
pub const HEADER: &str = "traceparent";

/// A trace context read from, or written to, a `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    parent_id: String,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut buf);
    hex::encode(buf)
}

impl TraceParent {
    /// A header as sent; `None` unless it is a valid version-00 context
    /// (lower-case hex, ids not all zero), as the W3C spec says to treat it.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" || flags.len() != 2 {
            return None;
        }
        if !is_hex(trace, 32) || !is_hex(parent, 16) {
            return None;
        }
        Some(TraceParent {
            trace_id: trace.to_string(),
            parent_id: parent.to_string(),
        })
    }

    /// A new trace.
    pub fn root() -> Self {
        TraceParent {
            trace_id: random_hex(16),
            parent_id: random_hex(8),
        }
    }

    /// The next hop of trace `trace_id` (a new trace if it is not a W3C
    /// trace id).
    pub fn child_of(trace_id: &str) -> Self {
        if is_hex(trace_id, 32) {
            TraceParent {
                trace_id: trace_id.to_string(),
                parent_id: random_hex(8),
            }
        } else {
            Self::root()
        }
    }

    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The header value (sampled).
    pub fn header(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.parent_id)
    }
}

/// Make `span` a child of `parent` for OpenTelemetry, so the spans the
/// `otlp` feature exports carry the platform's trace ids; nothing without
/// that feature.
pub fn link(span: &tracing::Span, parent: &TraceParent) {
    #[cfg(feature = "otlp")]
    crate::otlp::link(span, &parent.trace_id, &parent.parent_id);
    #[cfg(not(feature = "otlp"))]
    let _ = (span, parent);
}

tokio::task_local! {
    /// The trace id of the request or record being worked on.
    static CURRENT: String;
}

/// Run `work` as part of trace `trace_id`: what it calls over HTTP carries
/// the trace on, and the events it creates take it as their `traceId`.
pub async fn within<F: std::future::Future>(trace_id: String, work: F) -> F::Output {
    CURRENT.scope(trace_id, work).await
}

/// The current trace id, if running [`within`] one.
pub fn current() -> Option<String> {
    CURRENT.try_with(|t| t.clone()).ok()
}

/// The current trace id, or a new one.
pub fn current_or_new() -> String {
    current().unwrap_or_else(|| TraceParent::root().trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_context_is_continued_and_a_bad_one_refused() {
        let t = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let next = TraceParent::child_of(t.trace_id());
        assert_eq!(next.trace_id(), t.trace_id());
        let h = next.header();
        assert!(h.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && h.ends_with("-01"));
        assert_ne!(
            TraceParent::parse(&h),
            Some(t.clone()),
            "a new parent id per hop"
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // the platform's own trace ids (uuid simple) are W3C trace ids
        let own = uuid::Uuid::new_v4().simple().to_string();
        assert_eq!(TraceParent::child_of(&own).trace_id(), own);
        assert_eq!(TraceParent::root().trace_id().len(), 32);
        assert!(TraceParent::parse(&TraceParent::root().header()).is_some());
    }
}
