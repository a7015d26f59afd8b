//! The node's local state in sled: one tree per concern. Identities and QR
//! grants (province), transcode configs, trade idempotency records, the
//! outbox, and delivered notifications. The embedded bus shares the same
//! database (its own trees) and the same group-commit [`Flusher`].

mod configs;
mod flush;
mod identity;
mod trades;

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use flush::Flusher;
pub use trades::{Accepted, OutboxEntry};

/// Failure of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value did not decode.
    #[error("stored value is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// A transaction failed.
    #[error("transaction: {0}")]
    Transaction(String),
}

impl From<StoreError> for crate::error::ApiError {
    fn from(e: StoreError) -> Self {
        crate::error::ApiError::internal(e)
    }
}

/// Handle to the node's sled database and its trees. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    residents: sled::Tree,
    cards: sled::Tree,
    qrcodes: sled::Tree,
    configs: sled::Tree,
    trades: sled::Tree,
    outbox: sled::Tree,
    delivered: sled::Tree,
    meta: sled::Tree,
    flusher: Arc<Flusher>,
}

impl Store {
    /// Open (or create) the database under `dir`. Must run inside a tokio runtime
    /// (the flusher task is spawned here).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Sled(e.into()))?;
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(200))
            .open()?;
        let flusher = Flusher::start(db.clone());
        Ok(Store {
            residents: db.open_tree("residents")?,
            cards: db.open_tree("cards")?,
            qrcodes: db.open_tree("qrcodes")?,
            configs: db.open_tree("configs")?,
            trades: db.open_tree("trades")?,
            outbox: db.open_tree("outbox")?,
            delivered: db.open_tree("delivered")?,
            meta: db.open_tree("meta")?,
            flusher,
            db,
        })
    }

    /// The raw database (the embedded bus opens its trees here).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The shared group-commit flusher.
    pub fn flusher(&self) -> &Arc<Flusher> {
        &self.flusher
    }

    /// Wait until everything written before this call is on disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.flusher.sync().await
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
