//! Reference data on every instance of a role (a global table): residents,
//! fused cards, transcode configs and apps. The instance that takes an
//! admin write publishes it, sealed, to `akm.reference` under its scope
//! (`province`, or `city-<cityNo>`), and answers once its own replica
//! (`workers/reference_replica.rs`) has applied it. Every instance applies
//! the same records in the topic's order, the writer included, so all of
//! them end with the same data whatever was written where.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::ServiceError;
use crate::bus::Bus;
use crate::domain::resident::{FusedCard, Resident, TranscodeConfig};
use crate::domain::{IdcardNo, TargetType};
use crate::events::ReferenceChanged;
use crate::store::{AppRecord, Store, StoreError};

/// One admin write, as it travels (sealed) and as it is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Change {
    Resident {
        resident: Resident,
    },
    #[serde(rename_all = "camelCase")]
    Card {
        idcard_no: IdcardNo,
        target_type: String,
        card: FusedCard,
    },
    Config {
        config: TranscodeConfig,
    },
    App {
        app: AppRecord,
    },
    #[serde(rename_all = "camelCase")]
    AppRemoved {
        app_id: String,
    },
}

impl Change {
    fn kind(&self) -> &'static str {
        match self {
            Change::Resident { .. } => "resident",
            Change::Card { .. } => "card",
            Change::Config { .. } => "config",
            Change::App { .. } => "app",
            Change::AppRemoved { .. } => "appRemoved",
        }
    }

    /// What the change is about, without personal data (an ID number only
    /// as its keyed index): with scope and kind, the compaction key.
    fn subject(&self, store: &Store) -> String {
        match self {
            Change::Resident { resident } => store.keys().index(resident.idcard_no.expose()),
            Change::Card {
                idcard_no,
                target_type,
                ..
            } => format!("{}/{target_type}", store.keys().index(idcard_no.expose())),
            Change::Config { config } => format!("{}/{}", config.belongarea, config.target_type),
            // an app and its removal share a key: compaction keeps the last
            Change::App { app } => app.app_id.clone(),
            Change::AppRemoved { app_id } => app_id.clone(),
        }
    }

    /// Write the change to `store` (the taking instance, and every replica).
    pub fn apply(&self, store: &Store) -> Result<(), ServiceError> {
        match self {
            Change::Resident { resident } => store.put_resident(resident)?,
            Change::Card {
                idcard_no,
                target_type,
                card,
            } => store.put_card(idcard_no, &TargetType::parse(target_type)?, card)?,
            Change::Config { config } => store.put_config(config)?,
            Change::App { app } => store.put_app(app)?,
            Change::AppRemoved { app_id } => {
                store.remove_app(app_id)?;
            }
        }
        Ok(())
    }
}

/// How far this instance's replica has applied `akm.reference`: per
/// partition, the next offset it will apply.
#[derive(Debug, Clone, Default)]
pub struct Applied(Arc<watch::Sender<HashMap<u32, u64>>>);

impl Applied {
    /// The replica applied the record at `offset` of `partition`.
    pub fn advance(&self, partition: u32, offset: u64) {
        self.0.send_modify(|m| {
            let next = m.entry(partition).or_insert(0);
            *next = (*next).max(offset + 1);
        });
    }

    /// Wait until the record at `offset` of `partition` is applied.
    pub async fn reached(&self, partition: u32, offset: u64) -> bool {
        let mut rx = self.0.subscribe();
        let reached = rx
            .wait_for(|m| m.get(&partition).is_some_and(|n| *n > offset))
            .await
            .is_ok();
        reached
    }
}

/// How long an admin write waits for this instance's replica.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// Publishes the admin writes of one instance's scope.
#[derive(Debug, Clone)]
pub struct Reference {
    pub store: Store,
    /// `None` where there is no bus (writes at start-up of what every
    /// instance has from its settings, tools, tests): applied here only.
    pub bus: Option<Bus>,
    /// `province`, or `city-<cityNo>`.
    pub scope: String,
    /// This instance's replica's progress.
    pub applied: Applied,
}

impl Reference {
    /// Writes that stay in `store` (tools and tests that write a node's
    /// store directly, without its bus).
    pub fn local(store: Store) -> Self {
        Reference {
            store,
            bus: None,
            scope: String::new(),
            applied: Applied::default(),
        }
    }

    /// Publish `change` to every instance of the scope and wait until this
    /// instance's replica has applied it (not yet flushed: the caller syncs
    /// before it answers).
    pub async fn write(&self, change: Change) -> Result<(), ServiceError> {
        let Some(bus) = &self.bus else {
            return change.apply(&self.store);
        };
        let sealed = self
            .store
            .keys()
            .seal_bytes(&serde_json::to_vec(&change).map_err(StoreError::from)?);
        let at = bus
            .send(&ReferenceChanged {
                trace_id: uuid::Uuid::new_v4().simple().to_string(),
                scope: self.scope.clone(),
                kind: change.kind().to_string(),
                key: format!(
                    "{}/{}/{}",
                    self.scope,
                    change.kind(),
                    change.subject(&self.store)
                ),
                change: sealed,
            })
            .await?;
        match tokio::time::timeout(APPLY_WAIT, self.applied.reached(at.partition, at.offset)).await
        {
            Ok(true) => Ok(()),
            _ => Err(ServiceError::Deadline("管理数据未在时限内生效")),
        }
    }
}

/// The scope of a barrier: applied by no one.
pub const BARRIER: &str = "barrier";

/// Wait until this instance's replica has applied everything published
/// to `akm.reference` before now (start-up: a new or wiped instance
/// restores its scope before it serves): a barrier record goes to every
/// partition, and the replica's progress passes them. Bounded by `wait`;
/// whether it got there.
pub async fn caught_up(
    bus: &Bus,
    applied: &Applied,
    instance: &str,
    wait: Duration,
) -> Result<bool, ServiceError> {
    let barrier = ReferenceChanged {
        trace_id: uuid::Uuid::new_v4().simple().to_string(),
        scope: BARRIER.into(),
        kind: BARRIER.into(),
        // compaction keeps one barrier per instance
        key: format!("{BARRIER}/{instance}"),
        change: String::new(),
    };
    let topic = bus.topics().name(crate::bus::Topic::Reference);
    let mut at = Vec::new();
    for p in 0..bus.partitions(&topic)? {
        at.push(bus.publish(bus.message(&barrier)?.to_partition(p)).await?);
    }
    let all = async {
        for a in &at {
            if !applied.reached(a.partition, a.offset).await {
                return false;
            }
        }
        true
    };
    Ok(tokio::time::timeout(wait, all).await.unwrap_or(false))
}

/// Open a change read from `akm.reference` (sealed under a key of this
/// instance's keyring).
pub fn open(store: &Store, ev: &ReferenceChanged) -> Result<Change, ServiceError> {
    let plain = store
        .keys()
        .open_bytes(&ev.change)
        .map_err(ServiceError::Sealed)?;
    Ok(serde_json::from_slice(&plain).map_err(StoreError::from)?)
}
