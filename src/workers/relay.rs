//! The outbox relay: publishes outbox records to the bus and removes them.
//! Runs whenever a record is added, and every second to drain what a bus
//! outage left behind. The records of a trade acceptance that another
//! instance's acceptance has replaced here (this instance went down
//! between accepting and publishing; the caller retried elsewhere) are
//! dropped, not published: one set of events per trade.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::service::applied::Restore;
use crate::service::outbox;
use crate::service::trade::{ACCEPTANCE, TRADE_KEY};
use crate::store::{trade_key_of, OutboxRecord, Store};

/// The acceptance that holds a record's trade here, when it is not the
/// record's own (the changelog brought another instance's acceptance of
/// the same trade while this one's records waited): those records must not
/// go out.
fn superseded(store: &Store, r: &OutboxRecord) -> Option<String> {
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (own, key) = (header(ACCEPTANCE)?, trade_key_of(header(TRADE_KEY)?)?);
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
            let results = futures::future::join_all(
                batch
                    .iter()
                    .map(|e| bus.publish(outbox::message(e.record.clone()))),
            )
            .await;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::{CipherKind, DataKey, Keyring};
    use crate::durability::Durable;
    use crate::store::trade_key;

    #[test]
    fn records_of_an_acceptance_the_changelog_replaced_are_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(dir.path()).unwrap();
        let key = DataKey::parse(
            CipherKind::Aes256Gcm,
            &DataKey::generate(CipherKind::Aes256Gcm),
        )
        .unwrap();
        let store = Store::open(&durable, Arc::new(Keyring::new(key, vec![]))).unwrap();
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
        store.accept_trade(&key, b"d", "mine", &[], 1).unwrap();
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
