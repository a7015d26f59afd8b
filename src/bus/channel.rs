//! Typed channels: each event type names its topic, key, partition and
//! headers, so no caller spells them out. Every record carries the event's
//! trace id as a W3C `traceparent` header (the id is also a field of the
//! event).

use super::{BusError, Message, Topic, Topics};
use crate::events::{
    self, CallbackReplied, CallbackRequested, Event, Notification, QrGranted, ReferenceChanged,
    StateChanged, TradeRecorded, TradeReported, TranscodeAnswered, TranscodeReplied,
    TranscodeRequested,
};

/// An event with a fixed place on the bus.
pub trait Channel: Event {
    /// The contract topic it goes to.
    const TOPIC: Topic;
    /// The record key (decides the partition when there is no explicit one).
    fn key(&self) -> &str;
    /// The trace id, sent in the `traceparent` header.
    fn trace_id(&self) -> &str;
    /// An explicit partition (reply routing); `None` hashes the key.
    fn partition(&self) -> Option<u32> {
        None
    }
    /// Headers beyond `traceparent`.
    fn headers(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Encode `event` into the message of its channel.
pub fn message<E: Channel>(topics: &Topics, event: &E) -> Result<Message, BusError> {
    let payload = match topics.confluent_id(E::TOPIC) {
        Some(id) => events::encode_confluent(event, id)?,
        None => events::encode(event)?,
    };
    let mut m = Message::new(
        topics.name(E::TOPIC),
        event.key().as_bytes().to_vec(),
        payload,
    )
    .header(
        crate::trace::HEADER,
        crate::trace::TraceParent::child_of(event.trace_id()).header(),
    );
    for (k, v) in event.headers() {
        m = m.header(k, v);
    }
    if let Some(p) = event.partition() {
        m = m.to_partition(p);
    }
    Ok(m)
}

impl Channel for TranscodeRequested {
    const TOPIC: Topic = Topic::TranscodeRequest;
    fn key(&self) -> &str {
        &self.request_id
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
    /// Lets a node skip another node's requests without decoding them.
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("node", self.node.clone())]
    }
}

impl Channel for TranscodeReplied {
    const TOPIC: Topic = Topic::TranscodeReply;
    fn key(&self) -> &str {
        &self.request_id
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
    fn partition(&self) -> Option<u32> {
        Some(self.reply_partition.max(0) as u32)
    }
}

impl Channel for TradeReported {
    const TOPIC: Topic = Topic::TradeReported;
    fn key(&self) -> &str {
        &self.trade_no
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl Channel for TradeRecorded {
    const TOPIC: Topic = Topic::Trade;
    fn key(&self) -> &str {
        &self.subject_id
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl Channel for Notification {
    const TOPIC: Topic = Topic::Notify;
    fn key(&self) -> &str {
        &self.trade_no
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl Channel for QrGranted {
    const TOPIC: Topic = Topic::QrGrants;
    fn key(&self) -> &str {
        &self.token
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl Channel for ReferenceChanged {
    const TOPIC: Topic = Topic::Reference;
    /// Scope, kind and key: compaction keeps the latest change of each.
    fn key(&self) -> &str {
        &self.key
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl Channel for CallbackRequested {
    const TOPIC: Topic = Topic::CallbackRequest;
    /// The idempotency key: it decides the partition, so one owner decides it.
    fn key(&self) -> &str {
        &self.trade_key
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("node", self.node.clone())]
    }
}

impl Channel for CallbackReplied {
    const TOPIC: Topic = Topic::CallbackReply;
    fn key(&self) -> &str {
        &self.request_id
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
    fn partition(&self) -> Option<u32> {
        Some(self.reply_partition.max(0) as u32)
    }
}

impl Channel for TranscodeAnswered {
    const TOPIC: Topic = Topic::TranscodeOutcome;
    fn key(&self) -> &str {
        &self.id
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl Channel for StateChanged {
    const TOPIC: Topic = Topic::CallbackState;
    /// Scope, kind and trade: compaction keeps the latest of each.
    fn key(&self) -> &str {
        &self.key
    }
    fn trace_id(&self) -> &str {
        &self.trace_id
    }
}
