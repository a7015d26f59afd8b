//! Reference data on every instance of a role (a global table): residents,
//! fused cards, transcode configs and apps. The instance that takes an
//! admin write publishes it, sealed, to `akm.reference` under its scope
//! (`province`, or `city-<cityNo>`), and answers once its own replica
//! (`workers/reference_replica.rs`) has applied it. Every instance applies
//! the same records in the topic's order, the writer included, so all of
//! them end with the same data whatever was written where.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// as its keyed index): after the scope, the compaction key.
    fn subject(&self, store: &Store) -> String {
        match self {
            Change::Resident { resident } => {
                format!(
                    "resident/{}",
                    store.keys().index(resident.idcard_no.expose())
                )
            }
            Change::Card {
                idcard_no,
                target_type,
                ..
            } => format!(
                "card/{}/{target_type}",
                store.keys().index(idcard_no.expose())
            ),
            Change::Config { config } => {
                format!("config/{}/{}", config.belongarea, config.target_type)
            }
            // an app and its removal share a key: compaction keeps the last
            Change::App { app } => format!("app/{}", app.app_id),
            Change::AppRemoved { app_id } => format!("app/{app_id}"),
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

pub use super::applied::Applied;

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
        let at = bus.send(&self.event(&change)?).await?;
        match tokio::time::timeout(APPLY_WAIT, self.applied.reached(at.partition, at.offset)).await
        {
            Ok(true) => Ok(()),
            _ => Err(ServiceError::Deadline("管理数据未在时限内生效")),
        }
    }
}

impl Reference {
    /// The record of `change`: sealed whole, keyed without personal data.
    fn event(&self, change: &Change) -> Result<ReferenceChanged, ServiceError> {
        let sealed = self
            .store
            .keys()
            .seal_bytes(&serde_json::to_vec(change).map_err(StoreError::from)?);
        Ok(ReferenceChanged {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            scope: self.scope.clone(),
            kind: change.kind().to_string(),
            key: format!("{}/{}", self.scope, change.subject(&self.store)),
            change: sealed,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PersonName, Phone};

    const ID: &str = "340102199003073238";

    #[tokio::test]
    async fn a_change_travels_sealed_keyed_without_personal_data_and_applies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::for_tests(dir.path());
        let reference = Reference {
            scope: "province".into(),
            ..Reference::local(store.clone())
        };
        let idcard_no = IdcardNo::parse(ID).unwrap();
        let changes = [
            Change::Resident {
                resident: Resident {
                    idcard_no: idcard_no.clone(),
                    name: PersonName::parse("张三").unwrap(),
                    user_phone: Phone::parse("15665439684").unwrap(),
                    health_level: "1".into(),
                    data_source: "1".into(),
                    universal_auth: true,
                },
            },
            Change::Card {
                idcard_no: idcard_no.clone(),
                target_type: "3401002".into(),
                card: FusedCard {
                    target_id: "EHC-0001".into(),
                    target_object: String::new(),
                },
            },
        ];
        for change in changes {
            let ev = reference.event(&change).unwrap();
            let wire = format!("{} {} {}", ev.key, ev.kind, ev.change);
            for plain in [ID, "张三", "15665439684", "EHC-0001"] {
                assert!(!wire.contains(plain), "{plain} in {wire}");
            }
            assert!(ev.key.starts_with("province/"), "{}", ev.key);
            assert_eq!(open(&store, &ev).unwrap(), change);
            // a local reference (no bus) applies at once
            reference.write(change).await.unwrap();
        }
        assert_eq!(
            store.resident(&idcard_no).unwrap().unwrap().name.expose(),
            "张三"
        );
        let t = TargetType::parse("3401002").unwrap();
        assert_eq!(
            store.card(&idcard_no, &t).unwrap().unwrap().target_id,
            "EHC-0001"
        );
        // an app and its removal share a key: compaction keeps the last
        let app = |id: &str| AppRecord {
            app_id: id.into(),
            kind: crate::domain::app::AppKind::Terminal,
            scopes: crate::domain::app::Scopes::default(),
            rate_limit: 0,
            secrets: Vec::new(),
        };
        let put = reference.event(&Change::App { app: app("t-1") }).unwrap();
        let removed = reference
            .event(&Change::AppRemoved {
                app_id: "t-1".into(),
            })
            .unwrap();
        assert_eq!(put.key, "province/app/t-1");
        assert_eq!(removed.key, put.key);
    }
}
