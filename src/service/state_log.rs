//! The changelog of the callbacks' keyed state (`akm.callback.state`,
//! compacted): the trades a role accepted and the trades whose resident
//! was told. The owner of an idempotency key's partition writes its
//! acceptance there (through the outbox, with the trade's events, on the
//! same partition number as the key's `akm.callback.request` partition);
//! the province notifier writes its deliveries. Every instance replays the
//! topic into its store (`workers/state_replica.rs`), so a partition that
//! moves to another instance finds its state there, and an owner catches
//! up on a partition before it calls anything new. On the embedded bus
//! acceptances and deliveries are not written ([`StateLog::kept`]): its one
//! instance owns every partition for good and its store is the state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::applied::{self, Applied};
use super::outbox;
use super::ServiceError;
use crate::bus::{Bus, Channel, Topic};
use crate::events::StateChanged;
use crate::store::OutboxRecord;

/// A trade report taken (the idempotency record).
pub const ACCEPTED: &str = "accepted";
/// The resident was told about the trade (the notifier's delivered set).
pub const DELIVERED: &str = "delivered";
/// A catch-up marker (scope and kind): applied by no one.
pub const BARRIER: &str = "barrier";

/// How long an owner waits to catch up on a partition before it answers
/// 5004 instead of guessing (less when its caller stops waiting sooner).
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(3);

/// Per partition, the assignment ([`crate::bus::Record::assignment`]) under
/// which this instance last caught up on it.
type CaughtUp = Arc<Mutex<HashMap<u32, u64>>>;

/// One role's view of the changelog.
#[derive(Debug, Clone)]
pub struct StateLog {
    pub bus: Bus,
    /// `province`, or `city-<cityNo>`: the state this instance applies.
    pub scope: String,
    /// This instance's replica's progress.
    pub applied: Applied,
    /// Where this instance caught up, so it does once per assignment.
    pub caught_up: CaughtUp,
    /// Whether acceptances and deliveries go to the changelog. On Kafka
    /// they do: another instance may own a partition next, or restore
    /// from it. On the embedded bus they do not: its one instance owns
    /// every partition for good and its store is the state, and the bus
    /// lives in that store's database, so nothing could ever restore from
    /// the changelog that the store does not already hold.
    pub kept: bool,
}

impl StateLog {
    fn change(&self, kind: &str, trade_key: &str, trace: &str, at: i64) -> StateChanged {
        StateChanged {
            trace_id: trace.into(),
            scope: self.scope.clone(),
            kind: kind.into(),
            key: format!("{}/{kind}/{trade_key}", self.scope),
            trade_key: trade_key.into(),
            at,
            digest: String::new(),
        }
    }

    /// The outbox record of acceptance `trace` of `trade_key` (its sealed
    /// content digest), on `partition`: the key's request partition. None
    /// when the changelog is not [`kept`](Self::kept).
    pub fn accepted(
        &self,
        trade_key: &str,
        trace: &str,
        sealed_digest: String,
        at: i64,
        partition: u32,
    ) -> Result<Option<OutboxRecord>, ServiceError> {
        if !self.kept {
            return Ok(None);
        }
        let ev = StateChanged {
            digest: sealed_digest,
            ..self.change(ACCEPTED, trade_key, trace, at)
        };
        Ok(Some(outbox::record(
            crate::bus::channel::message(self.bus.topics(), &ev)?.to_partition(partition),
        )))
    }

    /// Publish that the resident was told about `trade_key` (nothing when
    /// the changelog is not [`kept`](Self::kept)).
    pub async fn delivered(
        &self,
        trade_key: &str,
        trace: &str,
        at: i64,
    ) -> Result<(), ServiceError> {
        if !self.kept {
            return Ok(());
        }
        self.bus
            .send(&self.change(DELIVERED, trade_key, trace, at))
            .await?;
        Ok(())
    }

    /// Wait (at most `wait`) until this instance's replica has applied
    /// everything written to `partition` before now: what the previous
    /// owner of the partition accepted is here before anything is taken as
    /// new. Once per `assignment` of the partition: while this instance
    /// keeps it, it is the partition's only writer, and it reads its own
    /// acceptances from its store.
    pub async fn catch_up(
        &self,
        partition: u32,
        assignment: u64,
        wait: Duration,
    ) -> Result<(), ServiceError> {
        let done = |m: &HashMap<u32, u64>| m.get(&partition) == Some(&assignment);
        if done(&self.caught_up.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        let wait = wait.min(CATCH_UP_WAIT);
        if applied::caught_up(
            &self.bus,
            Topic::CallbackState,
            &[partition],
            &self.applied,
            wait,
        )
        .await?
        {
            self.caught_up
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(partition, assignment);
            Ok(())
        } else {
            Err(ServiceError::Deadline("回传状态尚未恢复完成"))
        }
    }

    /// Start-up: wait (at most `wait`) until every partition is restored;
    /// whether it got there. A barrier record goes to every partition and
    /// the replica passes it: from then on its progress moves with every
    /// record, so [`StateLog::catch_up`] can compare it with end offsets (a
    /// replica resuming from its group's committed offsets has no progress
    /// to show before it reads something).
    pub async fn restored(&self, instance: &str, wait: Duration) -> Result<bool, ServiceError> {
        let n = self
            .bus
            .partitions(&self.bus.topics().name(StateChanged::TOPIC))?;
        let mut at = Vec::with_capacity(n as usize);
        for p in 0..n {
            let barrier = StateChanged {
                trace_id: uuid::Uuid::new_v4().simple().to_string(),
                scope: BARRIER.into(),
                kind: BARRIER.into(),
                // compaction keeps one per instance and partition
                key: format!("{BARRIER}/{instance}/{p}"),
                trade_key: String::new(),
                at: 0,
                digest: String::new(),
            };
            at.push(
                self.bus
                    .publish(self.bus.message(&barrier)?.to_partition(p))
                    .await?,
            );
        }
        let all = async {
            for a in &at {
                if !self.applied.reached(a.partition, a.offset).await {
                    return false;
                }
            }
            true
        };
        Ok(tokio::time::timeout(wait, all).await.unwrap_or(false))
    }
}
