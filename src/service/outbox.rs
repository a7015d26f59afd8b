//! Between the outbox's records and the bus's messages: the store keeps
//! its own record type, the relay publishes bus messages.

use crate::bus::Message;
use crate::store::OutboxRecord;

/// The outbox record of a message.
pub fn record(m: Message) -> OutboxRecord {
    OutboxRecord {
        topic: m.topic,
        partition: m.partition,
        key: m.key,
        headers: m.headers,
        payload: m.payload,
    }
}

/// The message of an outbox record.
pub fn message(r: OutboxRecord) -> Message {
    Message {
        topic: r.topic,
        partition: r.partition,
        key: r.key,
        headers: r.headers,
        payload: r.payload,
    }
}
