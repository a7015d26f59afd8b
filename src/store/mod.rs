//! The node's local state in sled: one tree per concern, behind small typed
//! APIs. Identities and QR grants (province), transcode configs, trade
//! idempotency records, the outbox, delivered notifications, registered
//! apps and the audit trail. The trees
//! live in the node's [`Durable`] database, which the embedded bus shares.

mod apps;
mod audit;
mod configs;
mod identity;
mod outbox;
mod trades;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durability::{DurabilityError, Durable};

pub use apps::{AppRecord, AppSecret};
pub use audit::{AuditFilter, AuditRecord};
pub use outbox::{OutboxEntry, OutboxRecord};
pub use trades::Accepted;

/// Failure of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database or its flush failed (I/O, corruption).
    #[error("storage")]
    Durability(#[from] DurabilityError),
    /// sled failed on a tree operation.
    #[error("sled")]
    Sled(#[from] sled::Error),
    /// A stored value did not decode.
    #[error("stored value is corrupt")]
    Corrupt(#[from] serde_json::Error),
    /// A transaction failed.
    #[error("transaction failed: {0}")]
    Transaction(String),
}

/// Handle to the node's trees. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    durable: Durable,
    residents: sled::Tree,
    cards: sled::Tree,
    qrcodes: sled::Tree,
    configs: sled::Tree,
    trades: sled::Tree,
    outbox: sled::Tree,
    delivered: sled::Tree,
    meta: sled::Tree,
    apps: sled::Tree,
    audit: sled::Tree,
}

impl Store {
    /// The store's trees in `durable`.
    pub fn open(durable: &Durable) -> Result<Self, StoreError> {
        Ok(Store {
            residents: durable.tree("residents")?,
            cards: durable.tree("cards")?,
            qrcodes: durable.tree("qrcodes")?,
            configs: durable.tree("configs")?,
            trades: durable.tree("trades")?,
            outbox: durable.tree("outbox")?,
            delivered: durable.tree("delivered")?,
            meta: durable.tree("meta")?,
            apps: durable.tree("apps")?,
            audit: durable.tree("audit")?,
            durable: durable.clone(),
        })
    }

    /// Wait until everything written before this call is on disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        Ok(self.durable.sync().await?)
    }

    /// Whether nothing was ever provisioned (demo seeding decides on this).
    pub fn is_empty(&self) -> bool {
        self.residents.is_empty() && self.configs.is_empty()
    }

    /// A secret of this node, created on first use and kept (e.g. the key of
    /// the pseudonymous subject id).
    pub fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let fresh = rand::random::<[u8; 32]>().to_vec();
        let key = format!("secret/{name}");
        match self
            .meta
            .compare_and_swap(&key, None as Option<&[u8]>, Some(fresh.clone()))?
        {
            Ok(()) => Ok(fresh),
            Err(cas) => Ok(cas.current.map(|v| v.to_vec()).unwrap_or(fresh)),
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(v)?)
}

fn from_json<T: DeserializeOwned>(v: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(v)?)
}

/// A composite key `a \0 b`.
fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}
