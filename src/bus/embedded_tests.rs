//! Tests of the embedded bus: offsets, retention, groups, memory topics.
use super::*;

#[tokio::test]
async fn undeclared_topics_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let durable = Durable::open(dir.path()).unwrap();
    let bus =
        EmbeddedBus::open(&durable, Topics::new("p.").unwrap(), crate::clock::system()).unwrap();
    for t in ["akm.trade", "p.akm.nope"] {
        let e = bus
            .publish(Message::new(t, b"k".to_vec(), vec![1]))
            .await
            .unwrap_err();
        assert!(matches!(e, BusError::UnknownTopic(_)), "{e}");
        assert!(bus.subscribe(t, "g").await.is_err());
    }
    assert!(bus
        .publish(Message::new("p.akm.trade", b"k".to_vec(), vec![1]))
        .await
        .is_ok());
}

/// Offsets never go back: after retention empties a partition and the
/// node restarts, the next record gets the next offset, not 0, so a
/// group's committed offset still reads it. And retention never trims
/// what a declared group has not consumed.
#[tokio::test]
async fn offsets_survive_an_emptied_partition_and_retention_waits_for_its_groups() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "akm.trade.reported"; // declared group: akm-forwarder
    let far = chrono::Utc::now().timestamp_millis() + 400 * 24 * 3600 * 1000;
    {
        let durable = Durable::open(dir.path()).unwrap();
        let bus =
            EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        for i in 0..3u8 {
            bus.publish(Message::new(topic, b"k".to_vec(), vec![i]).to_partition(0))
                .await
                .unwrap();
        }
        // not consumed: retention keeps them and says so
        assert_eq!(bus.trim(far).unwrap(), 0);
        assert_eq!(bus.held(), 3);
        let mut c = bus.subscribe(topic, "akm-forwarder").await.unwrap();
        let mut partition0 = 0;
        while partition0 < 3 {
            let r = c.next().await.unwrap();
            c.commit(&r).unwrap();
            partition0 += u32::from(r.partition == 0);
        }
        drop(c);
        assert_eq!(bus.trim(far).unwrap(), 3);
        assert_eq!(bus.held(), 0);
    }
    let durable = reopen(dir.path()).await;
    let bus =
        EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
    let at = bus
        .publish(Message::new(topic, b"k".to_vec(), vec![9]).to_partition(0))
        .await
        .unwrap();
    assert_eq!(at.offset, 3, "offsets went back after an emptied partition");
    let mut c = bus.subscribe(topic, "akm-forwarder").await.unwrap();
    let r = loop {
        let r = c.next().await.unwrap();
        if r.partition == 0 {
            break r;
        }
    };
    assert_eq!(r.payload, vec![9]);
}

/// A topic declared `durable = false` (the request-reply topics) is
/// kept in memory: nothing of it reaches the database, its groups'
/// commits included, and a restart starts it empty.
#[tokio::test]
async fn a_memory_topic_writes_nothing_to_disk_and_restarts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "akm.transcode.request";
    {
        let durable = Durable::open(dir.path()).unwrap();
        let bus =
            EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        for i in 0..3u8 {
            let at = bus
                .publish(Message::new(topic, b"k".to_vec(), vec![i]).to_partition(0))
                .await
                .unwrap();
            assert_eq!(at.offset, u64::from(i));
        }
        let mut c = bus.subscribe(topic, "g").await.unwrap();
        let r = loop {
            let r = c.next().await.unwrap();
            if r.partition == 0 {
                break r;
            }
        };
        assert_eq!(r.payload, vec![0]);
        c.commit(&r).unwrap();
        assert_eq!(bus.committed("g", &bus.log(topic).unwrap(), 0).unwrap(), 1);
        let names = durable.tree_names();
        assert!(
            !names.iter().any(|n| n.contains("transcode.request")),
            "{names:?}"
        );
        assert!(bus.offsets.is_empty() && bus.next_offsets.is_empty());
    }
    let durable = reopen(dir.path()).await;
    let bus =
        EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
    assert_eq!(bus.end_offsets(topic).await.unwrap(), vec![0; 8]);
}

/// Open the database again once the flush still running for the dropped
/// handle has released sled's lock.
async fn reopen(dir: &std::path::Path) -> Durable {
    for _ in 0..500 {
        if let Ok(d) = Durable::open(dir) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the database stayed locked");
}

/// Retention covers every declared topic, also ones never opened since start.
#[tokio::test]
async fn retention_covers_topics_not_opened_since_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let durable = Durable::open(dir.path()).unwrap();
        let bus =
            EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        bus.publish(Message::new("akm.notify.dlq", b"k".to_vec(), vec![1]))
            .await
            .unwrap();
    }
    let durable = reopen(dir.path()).await;
    let bus =
        EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
    let far = chrono::Utc::now().timestamp_millis() + 400 * 24 * 3600 * 1000;
    assert_eq!(bus.trim(far).unwrap(), 1);
}

#[tokio::test]
async fn retention_trims_old_records_and_consumers_skip_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let durable = Durable::open(dir.path()).unwrap();
    let bus =
        EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
    let topic = "akm.trade.reported.dlq"; // one partition
    for i in 0..3u8 {
        bus.publish(Message::new(topic, vec![i], vec![i]))
            .await
            .unwrap();
    }
    let mut c = bus.subscribe(topic, "g").await.unwrap();
    let first = c.next().await.unwrap();
    c.commit(&first).unwrap();
    assert_eq!(bus.trim(chrono::Utc::now().timestamp_millis()).unwrap(), 0);
    let far = chrono::Utc::now().timestamp_millis() + 400 * 24 * 3600 * 1000;
    assert_eq!(bus.trim(far).unwrap(), 3);
    bus.publish(Message::new(topic, vec![9], vec![9]))
        .await
        .unwrap();
    drop(c);
    let mut c = bus.subscribe(topic, "g").await.unwrap();
    let next = c.next().await.unwrap();
    assert_eq!((next.offset, next.payload), (3, vec![9]));
    assert_eq!(bus.end_offsets(topic).await.unwrap(), vec![4]);
}

#[tokio::test]
async fn a_group_shares_partitions_and_a_new_member_takes_over_uncommitted_work() {
    let dir = tempfile::tempdir().unwrap();
    let durable = Durable::open(dir.path()).unwrap();
    let bus =
        EmbeddedBus::open(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
    let topic = "akm.trade"; // eight partitions
    for i in 0..32u8 {
        bus.publish(Message::new(topic, vec![i], vec![i]))
            .await
            .unwrap();
    }
    let mut a = bus.subscribe(topic, "g").await.unwrap();
    let mut b = bus.subscribe(topic, "g").await.unwrap();
    let (mut pa, mut pb) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for _ in 0..8 {
        pa.insert(a.next().await.unwrap().partition);
        pb.insert(b.next().await.unwrap().partition);
    }
    assert!(pa.is_disjoint(&pb), "{pa:?} {pb:?}");
    // b dies without committing: a gets b's partitions from the start
    drop(b);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..32 {
        let r = a.next().await.unwrap();
        a.commit(&r).unwrap();
        seen.insert(r.payload[0]);
    }
    assert_eq!(seen.len(), 32, "every record delivered at least once");
}
