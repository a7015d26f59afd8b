//! The node's local state in sled: one tree per concern, behind small typed
//! APIs. Identities and QR grants (province), transcode configs, trade
//! idempotency records, the outbox, delivered notifications, registered
//! apps and the audit trail. Personal data (residents, cards, QR grants,
//! trade digests, app secrets) is sealed (`crypto.rs`) and looked up by a
//! keyed index of the ID number, never the plaintext. The trees
//! live in the node's [`Durable`] database, which the embedded bus shares.

mod apps;
mod audit;
mod configs;
mod group;
mod identity;
mod inline;
mod memo;
mod outbox;
mod rekey;
mod stats;
mod trades;

use serde::de::DeserializeOwned;
use serde::Serialize;

use std::sync::Arc;

use crate::crypto::{CryptoError, Keyring};
use crate::domain::resident::TranscodeConfig;
use crate::durability::{DurabilityError, Durable};

pub use apps::{AppRecord, AppSecret};
pub use audit::{AuditFilter, AuditRecord};
pub use inline::{Appended, Locked, Slot, TxLog};
pub use outbox::{OutboxEntry, OutboxRecord};
pub use stats::{Count, StatKind, StatsKey, StatsRow};
pub use trades::{trade_key, trade_key_of, Accepted};

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
    /// A sealed value does not open (wrong or missing key, damage).
    #[error("sealed value")]
    Crypto(#[from] CryptoError),
    /// The configured key is not the one the data was sealed with.
    #[error("{0}")]
    WrongKey(String),
}

impl StoreError {
    /// The value itself is bad (does not decode or open): reading it again
    /// gives the same answer, unlike a failing disk.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt(_) | StoreError::Crypto(_) | StoreError::WrongKey(_)
        )
    }
}

/// Handle to the node's trees. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    durable: Durable,
    /// The outbox depth, kept as a counter (a tree's `len` walks it).
    outbox_depth: Arc<std::sync::atomic::AtomicI64>,
    /// Told whenever outbox records are removed (published).
    outbox_removed: Arc<tokio::sync::Notify>,
    /// The outbox's first record when last looked at, and since when.
    outbox_head: Arc<std::sync::Mutex<Option<outbox::Head>>>,
    keys: Arc<Keyring>,
    residents: sled::Tree,
    cards: sled::Tree,
    qrcodes: sled::Tree,
    configs: sled::Tree,
    config_cache: Arc<memo::Memo<(String, String), Option<TranscodeConfig>>>,
    app_cache: Arc<memo::Memo<String, Option<AppRecord>>>,
    trades: sled::Tree,
    outbox: sled::Tree,
    delivered: sled::Tree,
    meta: sled::Tree,
    apps: sled::Tree,
    audit: sled::Tree,
    audit_queue: Arc<audit::Queue>,
    stats: sled::Tree,
    /// The multi-tree writes, committed in batches (`group.rs`).
    group: Arc<group::Group>,
}

impl Store {
    /// The store's trees in `durable`, sealing personal data under `keys`.
    /// Fails with [`StoreError::WrongKey`] when the data was sealed under a
    /// key that is not configured or does not open it.
    pub fn open(durable: &Durable, keys: Arc<Keyring>) -> Result<Self, StoreError> {
        let (trades, outbox) = (durable.tree("trades")?, durable.tree("outbox")?);
        let (stats, stats_offsets) = (durable.tree("stats")?, durable.tree("stats_offsets")?);
        let store = Store {
            group: Arc::new(group::Group::new(
                durable.clone(),
                group::GroupTrees {
                    trades: trades.clone(),
                    outbox: outbox.clone(),
                    stats: stats.clone(),
                    stats_offsets,
                },
            )),
            outbox_depth: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            outbox_removed: Arc::new(tokio::sync::Notify::new()),
            outbox_head: Arc::default(),
            keys,
            residents: durable.tree("residents")?,
            cards: durable.tree("cards")?,
            qrcodes: durable.tree("qrcodes")?,
            configs: durable.tree("configs")?,
            config_cache: Arc::default(),
            app_cache: Arc::default(),
            trades,
            outbox,
            delivered: durable.tree("delivered")?,
            meta: durable.tree("meta")?,
            apps: durable.tree("apps")?,
            audit: durable.tree("audit")?,
            audit_queue: Arc::default(),
            stats,
            durable: durable.clone(),
        };
        store.check_key()?;
        store.outbox_depth.store(
            store.outbox.len() as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(store)
    }

    /// The key check: a value sealed when the store was first keyed; it must
    /// open under the configured keys.
    fn check_key(&self) -> Result<(), StoreError> {
        const CHECK: &str = "crypto/check";
        match self.meta.get(CHECK)? {
            None => {
                self.meta.insert(CHECK, self.keys.seal("akm").as_bytes())?;
                Ok(())
            }
            Some(v) => {
                let sealed = String::from_utf8_lossy(&v).into_owned();
                match self.keys.open(&sealed) {
                    Ok(_) => Ok(()),
                    Err(CryptoError::UnknownKey(kid)) => Err(StoreError::WrongKey(format!(
                        "the data in this directory is sealed under data key {kid}, which is not configured (AKM_DATA_KEY / AKM_DATA_KEY_FILE, older keys in AKM_DATA_KEY_OLD)"
                    ))),
                    Err(_) => Err(StoreError::WrongKey(
                        "the configured data key does not open the data in this directory: wrong key".into(),
                    )),
                }
            }
        }
    }

    /// The keys personal data is sealed under.
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// The store key of a value looked up by ID number: its keyed index.
    fn id_key(&self, idcard_no: &str) -> String {
        self.keys.index(idcard_no)
    }

    fn seal<T: Serialize>(&self, v: &T) -> Result<Vec<u8>, StoreError> {
        Ok(self.keys.seal_bytes(&serde_json::to_vec(v)?).into_bytes())
    }

    fn unseal<T: DeserializeOwned>(&self, v: &[u8]) -> Result<T, StoreError> {
        let sealed = String::from_utf8_lossy(v);
        Ok(serde_json::from_slice(&self.keys.open_bytes(&sealed)?)?)
    }

    /// Append accepted trades' events to `log`'s partitions in their
    /// acceptance's own transaction from now on, instead of the outbox
    /// (`inline.rs`): `log` is the bus whose partitions live in this
    /// store's database. Set once, before the first acceptance.
    pub fn append_events_to(&self, log: Arc<dyn TxLog>) {
        self.group.append_to(log);
    }

    /// Wait until everything written before this call is on disk (at most
    /// the flush timeout).
    pub async fn sync(&self) -> Result<(), StoreError> {
        Ok(self.durable.sync().await?)
    }

    /// Whether the store can take writes: the last flush succeeded, free
    /// space is above the watermark, and a probe write goes in now.
    pub fn writable(&self) -> bool {
        self.durable.healthy() && self.durable.space_ok() && self.durable.probe()
    }

    /// The last flush succeeded and the database takes writes (no probe:
    /// two atomics).
    pub fn healthy(&self) -> bool {
        self.durable.healthy()
    }

    /// Free space is above the watermark.
    pub fn space_ok(&self) -> bool {
        self.durable.space_ok()
    }

    /// The database refuses writes until the process is restarted.
    pub fn failed(&self) -> bool {
        self.durable.failed()
    }

    /// Pass a write's result through; an I/O error marks the database
    /// failed (sled keeps it until the process restarts).
    fn noted<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Sled(sled::Error::Io(e))) = &r {
            self.durable.mark_failed(e);
        }
        r
    }

    /// Whether nothing was ever provisioned (demo seeding decides on this).
    pub fn is_empty(&self) -> bool {
        self.residents.is_empty() && self.configs.is_empty()
    }

    /// This store's instance id: random at creation, then kept (a wiped
    /// data directory is a new instance).
    pub fn instance_id(&self) -> Result<String, StoreError> {
        Ok(hex::encode(&self.secret("instance")?[..8]))
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

#[cfg(test)]
impl Store {
    /// A store in `dir` under a fresh data key, for unit tests (inside a
    /// tokio runtime: the flusher is spawned).
    pub(crate) fn for_tests(dir: &std::path::Path) -> Store {
        use crate::crypto::{CipherKind, DataKey};
        let durable = Durable::open(dir).expect("test database");
        let key = DataKey::parse(
            CipherKind::Aes256Gcm,
            &DataKey::generate(CipherKind::Aes256Gcm),
        )
        .expect("test key");
        Store::open(&durable, Arc::new(Keyring::new(key, vec![]))).expect("test store")
    }

    /// Group transactions committed so far (`group.rs`).
    pub(crate) fn transactions(&self) -> u64 {
        self.group.batches()
    }
}
