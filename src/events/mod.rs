//! Events on the bus: one struct per `schemas/*.avsc`, written as Avro
//! single-object encoding (`C3 01`, the 8-byte little-endian CRC-64-AVRO
//! fingerprint of the writer schema, then the binary record), so any Avro
//! tool can read a record from the files in `schemas/` alone.

mod types;

use std::sync::LazyLock;

use apache_avro::rabin::Rabin;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use types::{
    CallbackReplied, CallbackRequested, Notification, QrGranted, ReferenceChanged, StateChanged,
    TargetCodeRec, TradeRecorded, TradeReported, TranscodeAnswered, TranscodeReplied,
    TranscodeRequested,
};

/// The single-object encoding marker.
pub const MAGIC: [u8; 2] = [0xC3, 0x01];

/// A failure to encode or decode an event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The bytes are not single-object encoded.
    #[error("not Avro single-object encoding")]
    NoMagic,
    /// The writer schema's fingerprint is not one this build knows for the event.
    #[error("unknown writer schema fingerprint {0}")]
    UnknownSchema(String),
    /// Avro itself failed.
    #[error("avro")]
    Avro(#[source] Box<apache_avro::Error>),
}

impl From<apache_avro::Error> for EventError {
    fn from(e: apache_avro::Error) -> Self {
        EventError::Avro(Box::new(e))
    }
}

/// A parsed schema and its fingerprint.
pub struct SchemaInfo {
    pub schema: Schema,
    /// The schema file as written (docs and defaults kept): what a schema
    /// registry is given.
    pub source: &'static str,
    pub fingerprint: [u8; 8],
}

impl std::fmt::Debug for SchemaInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaInfo")
            .field("schema", &self.schema.canonical_form())
            .field("fingerprint", &hex::encode(self.fingerprint))
            .finish()
    }
}

impl SchemaInfo {
    fn parse(src: &'static str) -> Self {
        // The schema files are compiled in and checked by tests; a broken file
        // is a build defect, so failing at first use is right.
        #[allow(clippy::expect_used)]
        let schema = Schema::parse_str(src).expect("schemas/*.avsc must parse");
        let fp = schema.fingerprint::<Rabin>().bytes;
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&fp[..8]);
        SchemaInfo {
            schema,
            source: src,
            fingerprint,
        }
    }
}

/// An event type: its current schema and the older writer schemas it reads.
pub trait Event: Serialize + DeserializeOwned {
    /// The current (writer and reader) schema, `schemas/<Event>.avsc`.
    fn schema() -> &'static SchemaInfo;
    /// Older versions this build can still read, `schemas/history/<Event>.v<n>.avsc`.
    fn history() -> &'static [SchemaInfo];
}

macro_rules! event {
    ($t:ty, $file:literal $(, $old:literal)*) => {
        impl Event for $t {
            fn schema() -> &'static SchemaInfo {
                static S: LazyLock<SchemaInfo> = LazyLock::new(|| {
                    SchemaInfo::parse(include_str!(concat!("../../schemas/", $file)))
                });
                &S
            }
            fn history() -> &'static [SchemaInfo] {
                static H: LazyLock<Vec<SchemaInfo>> = LazyLock::new(|| {
                    vec![$(SchemaInfo::parse(include_str!(concat!("../../schemas/history/", $old)))),*]
                });
                &H
            }
        }
    };
}

event!(
    TranscodeRequested,
    "TranscodeRequested.avsc",
    "TranscodeRequested.v1.avsc"
);
event!(
    TranscodeReplied,
    "TranscodeReplied.avsc",
    "TranscodeReplied.v1.avsc"
);
event!(TradeReported, "TradeReported.avsc");
event!(TradeRecorded, "TradeRecorded.avsc");
event!(Notification, "Notification.avsc");
event!(QrGranted, "QrGranted.avsc");
event!(ReferenceChanged, "ReferenceChanged.avsc");
event!(CallbackRequested, "CallbackRequested.avsc");
event!(CallbackReplied, "CallbackReplied.avsc");
event!(StateChanged, "StateChanged.avsc");
event!(
    TranscodeAnswered,
    "TranscodeAnswered.avsc",
    "TranscodeAnswered.v1.avsc"
);

/// Encode an event as an Avro single object.
pub fn encode<E: Event>(e: &E) -> Result<Vec<u8>, EventError> {
    let info = E::schema();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&info.fingerprint);
    datum(e, &info.schema, &mut out)?;
    Ok(out)
}

/// Write `e`'s binary datum under `schema`: serialized straight into
/// `out`, checked against the schema on the way. Going through an
/// `apache_avro::Value` first (a map of field names) and validating it was
/// most of the encoding cost (BENCHMARKS.md).
fn datum<E: Event>(e: &E, schema: &Schema, out: &mut Vec<u8>) -> Result<(), EventError> {
    apache_avro::write_avro_datum_ref(schema, e, out)?;
    Ok(())
}

/// Decode an Avro single object written with the current or an older schema.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<E, EventError> {
    if bytes.len() < 10 || bytes[..2] != MAGIC {
        return Err(EventError::NoMagic);
    }
    decode_datum(&bytes[2..10], &bytes[10..])
}

/// Registry schema ids (Confluent wire format) and the fingerprints of the
/// schemas they name, for the schemas this build knows.
pub type SchemaIds = std::collections::HashMap<u32, [u8; 8]>;

/// The Confluent wire format's first byte.
pub const CONFLUENT_MAGIC: u8 = 0;

/// Encode an event in the Confluent wire format: magic 0, the registry's
/// 4-byte big-endian schema `id` (of `E`'s current schema), the datum.
pub fn encode_confluent<E: Event>(e: &E, id: u32) -> Result<Vec<u8>, EventError> {
    let mut out = Vec::with_capacity(256);
    out.push(CONFLUENT_MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    datum(e, &E::schema().schema, &mut out)?;
    Ok(out)
}

/// Decode either framing: Avro single-object encoding, or the Confluent
/// wire format with a schema id in `ids`.
pub fn decode_any<E: Event>(bytes: &[u8], ids: &SchemaIds) -> Result<E, EventError> {
    match bytes {
        [CONFLUENT_MAGIC, a, b, c, d, body @ ..] => {
            let id = u32::from_be_bytes([*a, *b, *c, *d]);
            let fp = ids
                .get(&id)
                .ok_or_else(|| EventError::UnknownSchema(format!("registry id {id}")))?;
            decode_datum(fp, body)
        }
        _ => decode(bytes),
    }
}

/// The fingerprint of a schema's text, as single-object encoding writes it.
pub fn fingerprint_of(src: &str) -> Option<[u8; 8]> {
    let schema = Schema::parse_str(src).ok()?;
    let fp = schema.fingerprint::<Rabin>().bytes;
    fp.get(..8)?.try_into().ok()
}

/// The datum `body` written with the schema of fingerprint `fp` (the
/// current one or one of the history), read as the current schema.
fn decode_datum<E: Event>(fp: &[u8], body: &[u8]) -> Result<E, EventError> {
    let reader = E::schema();
    let writer = std::iter::once(reader)
        .chain(E::history().iter())
        .find(|s| s.fingerprint == fp)
        .ok_or_else(|| EventError::UnknownSchema(hex::encode(fp)))?;
    let mut body = body;
    // the same schema needs no resolution
    let reader = (!std::ptr::eq(writer, reader)).then_some(&reader.schema);
    let value = apache_avro::from_avro_datum(&writer.schema, &mut body, reader)?;
    Ok(apache_avro::from_value(&value)?)
}

#[cfg(test)]
mod tests;
