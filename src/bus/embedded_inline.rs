//! The embedded bus as the store's [`TxLog`]: its durable partitions are
//! trees of the node's database, so an acceptance's transaction appends
//! its events to them directly (`store/inline.rs`). The partitions stay
//! held (their tails locked) from before the transaction until its
//! records are the tails' newest, so an offset is never taken twice and
//! readers never see a gap filled later.

use sled::IVec;

use super::{lock, partition_of, EmbeddedBus, TopicLog};
use crate::bus::message::encode_parts;
use crate::store::{Appended, Locked, Slot, TxLog};

impl TxLog for EmbeddedBus {
    fn slot(&self, topic: &str, partition: Option<u32>, key: &[u8]) -> Option<Slot> {
        let log = self.log(topic).ok()?;
        let n = log.partitions.len() as u32;
        let p = match partition {
            Some(p) if p < n => p,
            Some(_) => return None,
            None => partition_of(key, n),
        };
        log.partitions[p as usize].is_durable().then(|| Slot {
            topic: topic.to_string(),
            partition: p,
        })
    }

    fn entry(&self, key: &[u8], headers: &[(String, String)], payload: &[u8]) -> IVec {
        IVec::from(encode_parts(self.clock.now_ms(), key, headers, payload))
    }

    fn append_within(
        &self,
        slots: &[Slot],
        tx: &mut dyn FnMut(&[Locked<'_>]) -> Option<Appended>,
    ) -> Result<(), sled::Error> {
        let logs = slots
            .iter()
            .map(|s| self.log(&s.topic))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sled::Error::Unsupported(e.to_string()))?;
        // in the slots' order (sorted): two holders never wait on each other
        let mut held = Vec::with_capacity(slots.len());
        for (s, log) in slots.iter().zip(&logs) {
            let Some((tree, tail)) = log
                .partitions
                .get(s.partition as usize)
                .and_then(|p| p.hold())
            else {
                return Err(sled::Error::Unsupported(format!(
                    "{}/{} is not a durable partition",
                    s.topic, s.partition
                )));
            };
            held.push((tree, tail));
        }
        let locked: Vec<Locked<'_>> = held
            .iter()
            .map(|(tree, tail)| Locked {
                tree,
                next: tail.next(),
            })
            .collect();
        if let Some(appended) = tx(&locked) {
            for ((_, tail), entries) in held.iter_mut().zip(appended) {
                tail.extend(entries);
            }
        }
        Ok(())
    }

    fn wake(&self, slots: &[Slot]) {
        for s in slots {
            let log = lock(&self.logs).get(&s.topic).cloned();
            if let Some(list) = log
                .as_ref()
                .and_then(|l| l.readers.get(s.partition as usize))
            {
                TopicLog::wake(list);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::bus::message::decode_entry;
    use crate::bus::{BusBackend, BusConsumer, EmbeddedBus, Message, Topics};
    use crate::crypto::{CipherKind, DataKey, Keyring};
    use crate::durability::Durable;
    use crate::store::{trade_key, Accepted, OutboxRecord, Store};

    const TOPIC: &str = "akm.trade.reported";

    fn store_on(durable: &Durable) -> Store {
        let key = DataKey::parse(
            CipherKind::Aes256Gcm,
            &DataKey::generate(CipherKind::Aes256Gcm),
        )
        .unwrap();
        Store::open(durable, Arc::new(Keyring::new(key, vec![]))).unwrap()
    }

    fn record(i: u32) -> OutboxRecord {
        OutboxRecord {
            topic: TOPIC.into(),
            partition: None,
            key: format!("k{}", i % 5).into_bytes(),
            headers: vec![("n".into(), format!("a{i}"))],
            payload: format!("a{i}").into_bytes(),
        }
    }

    /// Every record of the topic, read partition by partition from 0: its
    /// payloads; offsets must be contiguous and in the tree.
    fn every_record(bus: &EmbeddedBus) -> Vec<String> {
        let log = bus.log(TOPIC).unwrap();
        let mut out = Vec::new();
        for (p, part) in log.partitions.iter().enumerate() {
            let (tree, tail) = part.hold().unwrap();
            let next = tail.next();
            drop(tail);
            assert_eq!(
                tree.len() as u64,
                next,
                "partition {p}: a record per offset"
            );
            for at in 0..next {
                let v = tree.get(at.to_be_bytes()).unwrap().unwrap();
                let r = decode_entry(TOPIC, p as u32, at, &v).unwrap();
                out.push(String::from_utf8(r.payload).unwrap());
            }
        }
        out
    }

    /// On the embedded bus an accepted trade's events are on their
    /// partitions when its acceptance answers, with nothing in the
    /// outbox; appends from elsewhere meanwhile take other offsets; a
    /// duplicate appends nothing; a consumer waiting is woken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accepted_events_are_on_the_bus_when_the_acceptance_answers() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(dir.path()).unwrap();
        let bus =
            EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        let store = store_on(&durable);
        store.append_events_to(bus.clone());
        let mut waiting = bus.subscribe(TOPIC, "akm-forwarder").await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let (store, bus) = (store.clone(), bus.clone());
            tasks.push(tokio::spawn(async move {
                let key = trade_key("340100", "3401002", &format!("T{i}"));
                let accepted = store
                    .accept_trade(&key, b"d", &format!("acc-{i}"), &[record(i)], 1)
                    .await
                    .unwrap();
                // the relay's kind of append, to the same partitions
                let other = Message::new(
                    TOPIC,
                    format!("k{}", i % 5).into_bytes(),
                    format!("p{i}").into_bytes(),
                );
                bus.publish(other).await.unwrap();
                accepted
            }));
        }
        for t in tasks {
            assert_eq!(
                t.await.unwrap(),
                (Accepted::New, Vec::new()),
                "no outbox ids"
            );
        }
        assert!(store.outbox_batch(10).unwrap().is_empty(), "nothing queued");
        let mut got = every_record(&bus);
        got.sort();
        let mut want: Vec<String> = (0..64)
            .flat_map(|i| [format!("a{i}"), format!("p{i}")])
            .collect();
        want.sort();
        assert_eq!(got, want, "each record once, none overwritten");
        assert!(
            store.transactions() < 64,
            "acceptances shared transactions: {}",
            store.transactions()
        );

        // the same trade again: a duplicate, and nothing appended
        let key = trade_key("340100", "3401002", "T0");
        let again = store
            .accept_trade(&key, b"d", "acc-again", &[record(0)], 2)
            .await
            .unwrap();
        assert_eq!(again.0, Accepted::Duplicate);
        assert_eq!(every_record(&bus).len(), 128);

        // the waiting consumer reads them all, and is woken for the next:
        // well before its fallback look (500 ms)
        let mut seen = BTreeSet::new();
        while seen.len() < 128 {
            let r = waiting.next().await.unwrap();
            seen.insert((r.partition, r.offset));
        }
        // nothing more: this also takes any wake-up left from before
        let idle = tokio::time::timeout(Duration::from_millis(100), waiting.next()).await;
        assert!(idle.is_err(), "nothing more to read");
        let reader = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(400), waiting.next()).await
        });
        let key = trade_key("340100", "3401002", "T-late");
        store
            .accept_trade(&key, b"d", "acc-late", &[record(1)], 3)
            .await
            .unwrap();
        let late = reader
            .await
            .unwrap()
            .expect("woken by the acceptance")
            .unwrap();
        assert_eq!(late.payload, b"a1");
    }
}
