//! The outbox relay: publishes outbox records to the bus and removes them.
//! Runs whenever a record is added, and every second to drain what a bus
//! outage left behind. The records of a trade acceptance that another
//! instance's acceptance has replaced here (this instance went down
//! between accepting and publishing; the caller retried elsewhere) are
//! dropped, not published: one set of events per trade. Changelog
//! records (`akm.callback.state`) of a batch go out before its events.
//! At start, records left from before a crash that are on the bus already
//! (published, not yet removed) are found by reading the topics' tails
//! back, and dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusConsumer, Topic};
use crate::service::applied::Restore;
use crate::service::outbox;
use crate::service::trade::{ACCEPTANCE, TRADE_KEY};
use crate::store::{trade_key_of, OutboxRecord, Store};

/// The acceptance that holds a record's trade here, when it is not the
/// record's own (the changelog brought another instance's acceptance of
/// the same trade while this one's records waited): those records must not
/// go out.
fn superseded(store: &Store, r: &OutboxRecord) -> Option<String> {
    let (own, key) = (header(r, ACCEPTANCE)?, trade_key_of(header(r, TRADE_KEY)?)?);
    match store.trade_acceptance(&key) {
        Ok(Some(holder)) if !holder.is_empty() && holder != own => Some(holder),
        _ => None,
    }
}

/// Drain the outbox until cancelled.
pub async fn run(
    store: Store,
    bus: Bus,
    wake: Arc<Notify>,
    restore: Restore,
    cancel: CancellationToken,
) {
    // what this instance left in its outbox waits for the changelog, which
    // says whether another instance has accepted those trades since
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = restore.done() => {}
    }
    // what went out before a crash, but was not yet removed here
    let sent = published_before(&store, &bus).await;
    loop {
        let mut failed = false;
        loop {
            let batch = match store.outbox_batch(256) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "outbox read failed");
                    failed = true;
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            let mut batch = batch;
            batch.retain(|e| {
                let sent_before = e.record.topic != bus.topics().name(Topic::CallbackState)
                    && header(&e.record, ACCEPTANCE)
                        .is_some_and(|a| sent.contains(&(e.record.topic.clone(), a.to_string())));
                if sent_before {
                    tracing::info!(topic = %e.record.topic, "outbox record published before a restart dropped");
                    if let Err(err) = store.outbox_remove(e.id) {
                        tracing::error!(error = %err, "outbox remove failed; will retry");
                    }
                }
                !sent_before
            });
            batch.retain(|e| match superseded(&store, &e.record) {
                Some(by) => {
                    // another owner accepted this trade after this instance
                    // went down before publishing: its events stand
                    tracing::warn!(topic = %e.record.topic, superseded_by = %by, "outbox record of a superseded acceptance dropped");
                    if let Err(err) = store.outbox_remove(e.id) {
                        tracing::error!(error = %err, "outbox remove failed; will retry");
                    }
                    false
                }
                None => true,
            });
            // the acceptances go out before the events: once a trade's
            // events are on the bus, the changelog says it was accepted, so
            // a crash here never lets another owner take it as new
            let state = bus.topics().name(Topic::CallbackState);
            let (acceptances, events): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|e| e.record.topic == state);
            let mut results = publish_all(&bus, &acceptances).await;
            let accepted = results.iter().all(Result::is_ok);
            let batch: Vec<_> = if accepted {
                results.extend(publish_all(&bus, &events).await);
                acceptances.into_iter().chain(events).collect()
            } else {
                acceptances
            };
            for (entry, result) in batch.iter().zip(results) {
                match result {
                    Ok(_) => {
                        if !failed {
                            if let Err(e) = store.outbox_remove(entry.id) {
                                // published; it goes again later, and the
                                // consumers drop the repeat
                                tracing::error!(error = %e, "outbox remove failed; will retry");
                                failed = true;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::service::chain(&e), topic = %entry.record.topic, "publish from outbox failed; will retry");
                        failed = true;
                    }
                }
            }
            if failed {
                break;
            }
        }
        let wait = if failed {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

fn header<'a>(r: &'a OutboxRecord, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// How many records back, per partition, the relay looks for its
/// leftovers at start.
const LOOKBACK: u64 = 5_000;

/// At start: the (topic, acceptance) of this instance's leftover outbox
/// records that are on the bus already (published, then the process died
/// before it removed them). Each topic they go to is read back over its
/// last [`LOOKBACK`] records per partition, so a restart does not publish
/// a trade's events twice; beyond that (a restart long after, on a busy
/// topic) they go again and the consumers' deduplication by tradeNo holds.
async fn published_before(store: &Store, bus: &Bus) -> HashSet<(String, String)> {
    let mut found = HashSet::new();
    let state = bus.topics().name(Topic::CallbackState);
    let Ok(left) = store.outbox_batch(1_000_000) else {
        return found;
    };
    let mut wanted: HashMap<String, HashSet<String>> = HashMap::new();
    for e in &left {
        if let Some(a) = header(&e.record, ACCEPTANCE).filter(|_| e.record.topic != state) {
            wanted
                .entry(e.record.topic.clone())
                .or_default()
                .insert(a.to_string());
        }
    }
    for (topic, acceptances) in wanted {
        let Ok(n) = bus.partitions(&topic) else {
            continue;
        };
        for p in 0..n {
            match read_back(bus, &topic, p, &acceptances).await {
                Ok(seen) => found.extend(seen.into_iter().map(|a| (topic.clone(), a))),
                Err(e) => {
                    tracing::warn!(%topic, partition = p, error = %crate::service::chain(&e), "outbox leftovers not checked against the bus; they go again")
                }
            }
        }
    }
    found
}

/// The `acceptances` among the last [`LOOKBACK`] records of `partition`.
async fn read_back(
    bus: &Bus,
    topic: &str,
    partition: u32,
    acceptances: &HashSet<String>,
) -> Result<Vec<String>, crate::bus::BusError> {
    let end = bus.end_offset(topic, partition).await?;
    let mut seen = Vec::new();
    if end == 0 {
        return Ok(seen);
    }
    let mut c = bus
        .assign_from(topic, partition, end.saturating_sub(LOOKBACK))
        .await?;
    loop {
        let r = match tokio::time::timeout(Duration::from_secs(10), c.next()).await {
            Ok(r) => r?,
            Err(_) => break,
        };
        if let Some(a) = r.header(ACCEPTANCE).filter(|a| acceptances.contains(*a)) {
            seen.push(a.to_string());
        }
        if r.offset + 1 >= end {
            break;
        }
    }
    Ok(seen)
}

/// Publish `entries` at once; each one's result, in order.
async fn publish_all(
    bus: &Bus,
    entries: &[crate::store::OutboxEntry],
) -> Vec<Result<crate::bus::Position, crate::bus::BusError>> {
    futures::future::join_all(
        entries
            .iter()
            .map(|e| bus.publish(outbox::message(e.record.clone()))),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::trade_key;

    #[tokio::test]
    async fn records_of_an_acceptance_the_changelog_replaced_are_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::for_tests(dir.path());
        let record = |acceptance: &str| OutboxRecord {
            topic: "akm.trade".into(),
            partition: None,
            key: b"k".to_vec(),
            headers: vec![
                (ACCEPTANCE.into(), acceptance.into()),
                (TRADE_KEY.into(), "340100/3401002/T-1".into()),
            ],
            payload: vec![],
        };
        let key = trade_key("340100", "3401002", "T-1");
        // unknown trade: nothing replaced it
        assert_eq!(superseded(&store, &record("mine")), None);
        store
            .accept_trade(&key, b"d", "mine", &[], 1)
            .await
            .unwrap();
        assert_eq!(superseded(&store, &record("mine")), None);
        // another instance's acceptance arrived from the changelog
        store
            .put_trade(&key, 2, "theirs", &store.keys().seal_bytes(b"d"))
            .unwrap();
        assert_eq!(
            superseded(&store, &record("mine")).as_deref(),
            Some("theirs")
        );
        // a record without the headers (not a trade's) always goes out
        let plain = OutboxRecord {
            headers: vec![],
            ..record("mine")
        };
        assert_eq!(superseded(&store, &plain), None);
    }
}
