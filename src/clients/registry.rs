//! The schema registry (the Confluent REST API, as Confluent Schema
//! Registry, Karapace and Apicurio's `ccompat` serve it): `akm schemas
//! apply` registers the schemas of the Confluent topics
//! ([`crate::bus::CONFLUENT`]) under `<topic>-value` with BACKWARD
//! compatibility; at start, a node asks for the ids its records carry and
//! refuses to start when a subject is missing. Nothing on a record's path
//! calls the registry: an outage after start delays nothing (and the
//! outbox holds trades whatever happens to the bus).

use serde_json::{json, Value};

use crate::bus::{Registered, Topic, Topics, CONFLUENT};
use crate::events::{Event, SchemaInfo, TradeRecorded};

/// The registry's media type.
const MEDIA: &str = "application/vnd.schemaregistry.v1+json";

/// A failure talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry {url} is unreachable")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("schema registry answered {status} to {what}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("schema registry subject {0} is missing (or has not this build's schema): run `akm schemas apply`")]
    Missing(String),
}

/// The current schema and the older ones of a Confluent topic's event.
fn schemas(topic: Topic) -> Option<(&'static SchemaInfo, &'static [SchemaInfo])> {
    match topic {
        Topic::Trade => Some((TradeRecorded::schema(), TradeRecorded::history())),
        _ => None,
    }
}

/// A registry at a base URL.
#[derive(Debug, Clone)]
pub struct Registry {
    http: reqwest::Client,
    base: String,
}

impl Registry {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Registry {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), RegistryError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header(reqwest::header::ACCEPT, MEDIA)
            .timeout(std::time::Duration::from_secs(10));
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, MEDIA)
                .body(b.to_string());
        }
        let unreachable = |source| RegistryError::Unreachable {
            url: self.base.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(unreachable)?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    async fn expect_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RegistryError> {
        let what = format!("{method} {path}");
        match self.call(method, path, body).await? {
            (200..=299, v) => Ok(v),
            (status, v) => Err(RegistryError::Refused {
                what,
                status,
                body: v.to_string(),
            }),
        }
    }

    /// Register every schema version of the Confluent topics (oldest
    /// first) under BACKWARD compatibility; the subjects and the ids of
    /// their current schemas.
    pub async fn apply(&self, topics: &Topics) -> Result<Vec<(String, u32)>, RegistryError> {
        let mut out = Vec::new();
        for &topic in CONFLUENT {
            let Some((current, history)) = schemas(topic) else {
                continue;
            };
            let subject = topics.subject(topic);
            self.expect_ok(
                reqwest::Method::PUT,
                &format!("/config/{subject}"),
                Some(json!({"compatibility": "BACKWARD"})),
            )
            .await?;
            let mut id = 0;
            for s in history.iter().chain(std::iter::once(current)) {
                let v = self
                    .expect_ok(
                        reqwest::Method::POST,
                        &format!("/subjects/{subject}/versions"),
                        Some(json!({"schema": s.source})),
                    )
                    .await?;
                id = v["id"].as_u64().unwrap_or_default() as u32;
            }
            out.push((subject, id));
        }
        Ok(out)
    }

    /// At start: the id of each Confluent topic's current schema (a
    /// subject without it is [`RegistryError::Missing`]), and the ids of
    /// every registered version this build can read.
    pub async fn resolve(&self, topics: &Topics) -> Result<Registered, RegistryError> {
        let mut r = Registered::default();
        for &topic in CONFLUENT {
            let Some((current, history)) = schemas(topic) else {
                continue;
            };
            let subject = topics.subject(topic);
            let id = match self
                .call(
                    reqwest::Method::POST,
                    &format!("/subjects/{subject}"),
                    Some(json!({"schema": current.source})),
                )
                .await?
            {
                (200, v) => v["id"].as_u64().unwrap_or_default() as u32,
                (404, _) => return Err(RegistryError::Missing(subject)),
                (status, v) => {
                    return Err(RegistryError::Refused {
                        what: format!("POST /subjects/{subject}"),
                        status,
                        body: v.to_string(),
                    })
                }
            };
            r.ids.insert(topics.name(topic), id);
            r.known.insert(id, current.fingerprint);
            let versions = self
                .expect_ok(
                    reqwest::Method::GET,
                    &format!("/subjects/{subject}/versions"),
                    None,
                )
                .await?;
            for v in versions.as_array().into_iter().flatten() {
                let one = self
                    .expect_ok(
                        reqwest::Method::GET,
                        &format!("/subjects/{subject}/versions/{v}"),
                        None,
                    )
                    .await?;
                let fp = one["schema"]
                    .as_str()
                    .and_then(crate::events::fingerprint_of);
                let known = std::iter::once(current)
                    .chain(history)
                    .any(|s| Some(s.fingerprint) == fp);
                if let (Some(id), Some(fp), true) = (one["id"].as_u64(), fp, known) {
                    r.known.insert(id as u32, fp);
                }
            }
        }
        Ok(r)
    }
}
