//! The bus conformance suite, written once, run on the backend under test
//! (embedded, or Kafka with `AKM_TEST_BUS=kafka`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use akm::bus::{Bus, BusConsumer, Message, Topics};
use akm::config::BusKind;

use crate::helpers::{apply_topics, settings, WAIT};

/// A bus on the backend under test, with its own topics.
pub async fn test_bus() -> (Bus, tempfile::TempDir) {
    test_bus_with(|_| {}).await
}

/// A bus on the backend under test with settings changed by `f`.
pub async fn test_bus_with(f: impl FnOnce(&mut akm::config::Settings)) -> (Bus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    f(&mut s);
    apply_topics(&s).await;
    let bus = if s.bus == BusKind::Kafka {
        Bus::kafka(
            akm::bus::KafkaOptions::from_settings(&s),
            Topics::new(&s.topic_prefix).unwrap(),
        )
        .await
        .unwrap()
    } else {
        let durable = akm::durability::Durable::open(dir.path()).unwrap();
        Bus::embedded(&durable, Topics::new("").unwrap(), akm::clock::system()).unwrap()
    };
    (bus, dir)
}

fn topic(bus: &Bus, base: &str) -> String {
    bus.topics()
        .declared()
        .into_iter()
        .map(|d| d.name)
        .find(|n| n.ends_with(base) && !n.ends_with(&format!("{base}.dlq")))
        .unwrap()
}

async fn next(c: &mut akm::bus::Consumer) -> akm::bus::Record {
    tokio::time::timeout(WAIT, c.next())
        .await
        .expect("no record in time")
        .unwrap()
}

#[tokio::test]
async fn order_is_kept_per_key() {
    let (bus, _d) = test_bus().await;
    let t = topic(&bus, "akm.trade");
    for i in 0..30u8 {
        let p = bus
            .publish(Message::new(t.clone(), b"same-key".to_vec(), vec![i]))
            .await
            .unwrap();
        assert!(p.partition < 8);
    }
    let mut c = bus.subscribe(&t, "order").await.unwrap();
    for i in 0..30u8 {
        let r = next(&mut c).await;
        assert_eq!(r.payload, vec![i]);
        c.commit(&r).unwrap();
    }
}

#[tokio::test]
async fn records_not_committed_are_redelivered_to_the_next_member() {
    let (bus, _d) = test_bus().await;
    let t = topic(&bus, "akm.notify.dlq"); // one partition
    for i in 0..5u8 {
        bus.publish(Message::new(t.clone(), vec![i], vec![i]).header("h", "v"))
            .await
            .unwrap();
    }
    let mut a = bus.subscribe(&t, "redeliver").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut a).await);
    }
    assert_eq!(got[0].header("h"), Some("v"));
    a.commit(&got[1]).unwrap(); // records 0 and 1 are done; 2 and 3 are in flight
    drop(a); // dies before committing 2 and 3
    let mut b = bus.subscribe(&t, "redeliver").await.unwrap();
    let r = next(&mut b).await;
    assert_eq!(
        r.payload,
        vec![2],
        "the first uncommitted record comes again"
    );
    assert_eq!(next(&mut b).await.payload, vec![3]);
    assert_eq!(next(&mut b).await.payload, vec![4]);
}

#[tokio::test]
async fn two_members_of_a_group_share_the_partitions() {
    let (bus, _d) = test_bus().await;
    let t = topic(&bus, "akm.trade");
    let a = bus.subscribe(&t, "share").await.unwrap();
    let b = bus.subscribe(&t, "share").await.unwrap();
    let seen: Arc<Mutex<Vec<(char, u8)>>> = Arc::default();
    let mut tasks = Vec::new();
    for (name, mut c) in [('a', a), ('b', b)] {
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let r = c.next().await.unwrap();
                c.commit(&r).unwrap();
                seen.lock().unwrap().push((name, r.payload[0]));
            }
        }));
    }
    // Publish until both members have been given work (a group's members
    // join at their own pace), then check that nothing was lost.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut published = 0u8;
    loop {
        for _ in 0..4 {
            let m = Message::new(
                t.clone(),
                format!("key-{published}").into_bytes(),
                vec![published],
            );
            bus.publish(m).await.unwrap();
            published += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let both = {
            let seen = seen.lock().unwrap();
            seen.iter().any(|(n, _)| *n == 'a') && seen.iter().any(|(n, _)| *n == 'b')
        };
        if both {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline && published < 240,
            "the two members never shared the partitions"
        );
    }
    loop {
        let distinct: BTreeSet<u8> = seen.lock().unwrap().iter().map(|(_, v)| *v).collect();
        if distinct.len() == published as usize {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {published} consumed",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn replies_reach_only_the_instance_that_owns_the_partition() {
    let (bus, _d) = test_bus().await;
    let t = topic(&bus, "akm.transcode.reply");
    let mut zero = bus.assign(&t, 0).await.unwrap();
    let mut one = bus.assign(&t, 1).await.unwrap();
    bus.publish(Message::new(t.clone(), b"r1".to_vec(), b"for-one".to_vec()).to_partition(1))
        .await
        .unwrap();
    bus.publish(Message::new(t.clone(), b"r0".to_vec(), b"for-zero".to_vec()).to_partition(0))
        .await
        .unwrap();
    assert_eq!(next(&mut zero).await.payload, b"for-zero");
    let r = next(&mut one).await;
    assert_eq!((r.payload.as_slice(), r.partition), (&b"for-one"[..], 1));
}

#[tokio::test]
async fn an_assigned_reader_starts_at_the_end() {
    let (bus, _d) = test_bus().await;
    let t = topic(&bus, "akm.transcode.reply");
    bus.publish(Message::new(t.clone(), b"old".to_vec(), b"old".to_vec()).to_partition(2))
        .await
        .unwrap();
    let mut c = bus.assign(&t, 2).await.unwrap();
    bus.publish(Message::new(t.clone(), b"new".to_vec(), b"new".to_vec()).to_partition(2))
        .await
        .unwrap();
    assert_eq!(next(&mut c).await.payload, b"new");
    assert_eq!(bus.end_offsets(&t).await.unwrap()[2], 2);
}

/// Pausing a partition stops its delivery while the others go on;
/// resuming delivers it from where it stopped (both backends).
#[tokio::test]
async fn a_paused_partition_waits_while_the_others_flow_and_resumes_in_order() {
    let (bus, _d) = test_bus().await;
    let t = topic(&bus, "akm.trade");
    // two keys that land in different partitions
    let mut keys: Vec<(Vec<u8>, u32)> = Vec::new();
    for i in 0..64u8 {
        let key = format!("pause-{i}").into_bytes();
        let p = bus
            .publish(Message::new(t.clone(), key.clone(), vec![0]))
            .await
            .unwrap()
            .partition;
        if !keys.iter().any(|(_, q)| *q == p) {
            keys.push((key, p));
        }
        if keys.len() == 2 {
            break;
        }
    }
    let [(held_key, held), (free_key, _)] = [keys[0].clone(), keys[1].clone()];
    let mut c = bus.subscribe(&t, "pause").await.unwrap();
    // drain what was published so far, then pause one partition
    let ends: u64 = bus.count(&t).await.unwrap();
    for _ in 0..ends {
        let r = next(&mut c).await;
        c.commit(&r).unwrap();
    }
    c.pause(held).unwrap();
    for i in 1..=3u8 {
        bus.publish(Message::new(t.clone(), held_key.clone(), vec![i]))
            .await
            .unwrap();
        bus.publish(Message::new(t.clone(), free_key.clone(), vec![i]))
            .await
            .unwrap();
    }
    for i in 1..=3u8 {
        let r = next(&mut c).await;
        assert_ne!(r.partition, held, "a paused partition was delivered");
        assert_eq!(r.payload, vec![i]);
        c.commit(&r).unwrap();
    }
    // nothing more while paused
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), c.next())
            .await
            .is_err(),
        "a record of the paused partition arrived"
    );
    c.resume(held).unwrap();
    for i in 1..=3u8 {
        let r = next(&mut c).await;
        assert_eq!((r.partition, r.payload.clone()), (held, vec![i]));
        c.commit(&r).unwrap();
    }
}

/// Both backends refuse a topic that is not declared in topics/.
#[tokio::test]
async fn undeclared_topics_are_refused() {
    let (bus, _d) = test_bus().await;
    let undeclared = format!("{}akm.nope", bus.topics().prefix());
    let e = bus
        .publish(Message::new(undeclared.clone(), b"k".to_vec(), vec![1]))
        .await
        .unwrap_err();
    assert!(matches!(e, akm::bus::BusError::UnknownTopic(_)), "{e}");
    assert!(!e.is_retriable());
    assert!(bus.subscribe(&undeclared, "g").await.is_err());
}

/// A typed channel: the event decides topic, key, partition and headers.
#[tokio::test]
async fn an_event_goes_to_its_channel() {
    let (bus, _d) = test_bus().await;
    let reply = akm::events::TranscodeReplied {
        request_id: "req-1".into(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        reply_partition: 5,
        subject_id: "s".into(),
        err_code: "200".into(),
        detail: "转码成功".into(),
        codes: vec![],
    };
    let t = bus.topics().name(akm::bus::Topic::TranscodeReply);
    let mut c = bus.assign(&t, 5).await.unwrap();
    let at = bus.send(&reply).await.unwrap();
    assert_eq!(at.partition, 5);
    let r = next(&mut c).await;
    assert_eq!(
        (r.topic.as_str(), r.key.as_slice()),
        (t.as_str(), &b"req-1"[..])
    );
    let parent = r
        .header("traceparent")
        .and_then(akm::trace::TraceParent::parse);
    assert_eq!(
        parent.as_ref().map(|t| t.trace_id()),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{:?}",
        r.headers
    );
    let back: akm::events::TranscodeReplied = akm::events::decode(&r.payload).unwrap();
    assert_eq!(back, reply);
}

/// A handler that must wait longer than the poll interval parks the record
/// (its partition paused) instead of blocking: the other partitions flow
/// meanwhile, the member is not evicted (on Kafka `max.poll.interval.ms` is
/// 6 s here and the wait 8 s), and every record is handled to success once.
#[tokio::test]
async fn a_handler_slower_than_the_poll_interval_parks_and_nothing_is_redelivered() {
    let (bus, _dir) = test_bus_with(|s| {
        s.kafka_properties = Some("max.poll.interval.ms=6000;session.timeout.ms=6000".into());
    })
    .await;
    // a slow record and fast ones on other partitions
    let slow = akm::events::TradeRecorded {
        trace_id: "t".into(),
        recorded_at: 0,
        subject_id: "slow".into(),
        city_no: "340100000000".into(),
        target_type: "3401002".into(),
        target_name: "x".into(),
        target_ref: "r".into(),
        trade_time: "20200628193425".into(),
        trade_no: "SLOW".into(),
        msg: "m".into(),
        trade_state: "1".into(),
    };
    let slow_at = bus.send(&slow).await.unwrap();
    let mut fast = Vec::new();
    let mut i = 0;
    while fast.len() < 4 {
        let e = akm::events::TradeRecorded {
            subject_id: format!("fast-{i}"),
            trade_no: format!("FAST-{i}"),
            ..slow.clone()
        };
        i += 1;
        let at = bus.send(&e).await.unwrap();
        if at.partition != slow_at.partition {
            fast.push(e.trade_no);
        }
    }
    let handled: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let started = std::time::Instant::now();
    let cancel = tokio_util::sync::CancellationToken::new();
    let worker = {
        let (handled, bus, cancel) = (handled.clone(), bus.clone(), cancel.clone());
        tokio::spawn(async move {
            akm::workers::consume::<akm::events::TradeRecorded, _, _>(
                bus,
                cancel,
                "slow-handler",
                None,
                move |ev, _rec, _attempt| {
                    let handled = handled.clone();
                    async move {
                        let done =
                            ev.trade_no != "SLOW" || started.elapsed() > Duration::from_secs(8);
                        handled.lock().unwrap().push((ev.trade_no.clone(), done));
                        Ok(if done {
                            akm::workers::Flow::Commit
                        } else {
                            akm::workers::Flow::RetryAfter(Duration::from_millis(500))
                        })
                    }
                },
            )
            .await
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done: Vec<String> = handled
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, d)| *d)
            .map(|(n, _)| n.clone())
            .collect();
        if done.contains(&"SLOW".to_string()) && fast.iter().all(|f| done.contains(f)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all handled: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // a moment for any redelivery a rebalance would cause
    tokio::time::sleep(Duration::from_secs(2)).await;
    cancel.cancel();
    let _ = worker.await;
    let h = handled.lock().unwrap().clone();
    let successes = |n: &str| h.iter().filter(|(x, d)| x == n && *d).count();
    assert_eq!(successes("SLOW"), 1, "{h:?}");
    for f in &fast {
        assert_eq!(successes(f), 1, "{f} handled again: {h:?}");
    }
    // the fast ones did not wait for the slow one
    let first_slow_success = h.iter().position(|(x, d)| x == "SLOW" && *d).unwrap();
    assert!(
        fast.iter()
            .all(|f| h.iter().position(|(x, _)| x == f).unwrap() < first_slow_success),
        "{h:?}"
    );
    // and the slow one was tried several times, not held in one long call
    assert!(h.iter().filter(|(x, _)| x == "SLOW").count() > 3, "{h:?}");
}

/// Run a windowed consumer of `akm.trade` in `group` that records the
/// tradeNos it handles; `hold` keeps the handler of that tradeNo waiting
/// until `release` turns true.
fn windowed(
    bus: &Bus,
    group: &'static str,
    handled: Arc<Mutex<Vec<String>>>,
    hold: &'static str,
    release: tokio::sync::watch::Receiver<bool>,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let cancel = tokio_util::sync::CancellationToken::new();
    let (bus, c) = (bus.clone(), cancel.clone());
    let worker = tokio::spawn(async move {
        akm::workers::consume_window::<akm::events::TradeRecorded, _, _>(
            bus,
            c,
            group,
            None,
            8,
            move |ev, _rec, _attempt| {
                let (handled, mut release) = (handled.clone(), release.clone());
                async move {
                    if ev.trade_no == hold {
                        let _ = release.wait_for(|r| *r).await;
                    }
                    handled.lock().unwrap().push(ev.trade_no);
                    Ok(akm::workers::Flow::Commit)
                }
            },
        )
        .await
    });
    (cancel, worker)
}

async fn until_handled(handled: &Arc<Mutex<Vec<String>>>, want: &[String]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let h = handled.lock().unwrap().clone();
        if want.iter().all(|w| h.contains(w)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "handled {h:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A trade event whose key puts every one of them in the same partition.
fn one_partition_trade(no: usize) -> akm::events::TradeRecorded {
    akm::events::TradeRecorded {
        trace_id: "t".into(),
        recorded_at: 0,
        subject_id: "one-subject-one-partition".into(),
        city_no: "340100000000".into(),
        target_type: "3401002".into(),
        target_name: "x".into(),
        target_ref: "r".into(),
        trade_time: "20200628193425".into(),
        trade_no: format!("W{no}"),
        msg: "m".into(),
        trade_state: "1".into(),
    }
}

/// Shutdown (the cancel) starts nothing more but lets the runs in flight
/// finish and commits them: an effect that happened is not repeated by the
/// member that comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_runs_in_flight_finish_and_commits_them() {
    let (bus, _dir) = test_bus().await;
    for i in 0..4 {
        bus.send(&one_partition_trade(i)).await.unwrap();
    }
    let names: Vec<String> = (0..4).map(|i| format!("W{i}")).collect();
    let (release, held) = tokio::sync::watch::channel(false);
    let first: Arc<Mutex<Vec<String>>> = Arc::default();
    let (cancel, worker) = windowed(&bus, "draining", first.clone(), "W0", held);
    until_handled(&first, &names[1..]).await;
    cancel.cancel();
    // W0 is still running: the worker waits for it
    tokio::task::yield_now().await;
    assert!(!worker.is_finished(), "stopped with a run in flight");
    let _ = release.send(true);
    tokio::time::timeout(WAIT, worker)
        .await
        .expect("the drain ends once the run is done")
        .unwrap();
    assert!(first.lock().unwrap().contains(&"W0".to_string()));
    // all four committed: the next member starts after them
    bus.send(&one_partition_trade(4)).await.unwrap();
    let second: Arc<Mutex<Vec<String>>> = Arc::default();
    let (cancel, worker) = windowed(&bus, "draining", second.clone(), "", release.subscribe());
    until_handled(&second, &["W4".to_string()]).await;
    cancel.cancel();
    let _ = worker.await;
    assert_eq!(*second.lock().unwrap(), vec!["W4".to_string()]);
}

/// With a window, the records behind a slow one in its partition are
/// handled meanwhile; the commit never passes the slow one, so a member
/// that takes over gets it and everything after it again; once it is done,
/// the commit moves past all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_handles_a_partition_at_once_and_commits_in_order() {
    let (bus, _dir) = test_bus().await;
    let event = one_partition_trade;
    let names: Vec<String> = (0..6).map(|i| format!("W{i}")).collect();
    for i in 0..6 {
        bus.send(&event(i)).await.unwrap();
    }
    // W0 is held: W1..W5 are handled while it waits
    let (release, held) = tokio::sync::watch::channel(false);
    let first: Arc<Mutex<Vec<String>>> = Arc::default();
    let (_cancel, worker) = windowed(&bus, "windowed", first.clone(), "W0", held);
    until_handled(&first, &names[1..]).await;
    assert!(!first.lock().unwrap().contains(&"W0".to_string()));
    // the member dies (a crash: no drain)
    worker.abort();
    let _ = worker.await;
    // nothing was committed past W0: the next member gets all of them again
    let second: Arc<Mutex<Vec<String>>> = Arc::default();
    let _ = release.send(true);
    let (cancel, worker) = windowed(&bus, "windowed", second.clone(), "", release.subscribe());
    until_handled(&second, &names).await;
    cancel.cancel();
    let _ = worker.await;
    // all six committed: the next member starts after them
    bus.send(&event(6)).await.unwrap();
    let third: Arc<Mutex<Vec<String>>> = Arc::default();
    let (cancel, worker) = windowed(&bus, "windowed", third.clone(), "", release.subscribe());
    until_handled(&third, &["W6".to_string()]).await;
    cancel.cancel();
    let _ = worker.await;
    assert_eq!(*third.lock().unwrap(), vec!["W6".to_string()]);
}

/// The group members of a process report the partitions they hold (what
/// `/readyz` shows): two members hold every partition of the topic once
/// between them; when one leaves, its entry goes and the other takes all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_report_the_partitions_they_hold() {
    let (bus, _dir) = test_bus().await;
    let topic = bus.topics().name(akm::bus::Topic::Trade);
    let key = format!("{topic} holding");
    let all: Vec<u32> = (0..bus.partitions(&topic).unwrap()).collect();
    let held = |bus: &Bus| {
        bus.owned()
            .snapshot()
            .get(&key)
            .cloned()
            .unwrap_or_default()
    };
    let until = |want: Vec<u32>, what: &'static str| {
        let bus = bus.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while held(&bus) != want {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: held {:?}",
                    held(&bus)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (_release, hold) = tokio::sync::watch::channel(true);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (first, a) = windowed(&bus, "holding", seen.clone(), "", hold.clone());
    let (second, b) = windowed(&bus, "holding", seen.clone(), "", hold.clone());
    until(all.clone(), "two members").await;
    second.cancel();
    let _ = b.await;
    until(all.clone(), "one member after the other left").await;
    first.cancel();
    let _ = a.await;
    until(Vec::new(), "no member").await;
}

#[tokio::test]
async fn a_record_names_the_assignment_it_was_read_under_and_a_rebalance_changes_it() {
    let (bus, _d) = test_bus().await;
    let t = topic(&bus, "akm.trade");
    let mut a = bus.subscribe(&t, "numbered").await.unwrap();
    let send = |n: u8| {
        let (bus, t) = (bus.clone(), t.clone());
        async move {
            let m = Message::new(t, format!("key-{n}").into_bytes(), vec![n]);
            bus.publish(m).await.unwrap();
        }
    };
    send(0).await;
    let first = next(&mut a).await;
    a.commit(&first).unwrap();
    send(1).await;
    let second = next(&mut a).await;
    a.commit(&second).unwrap();
    assert_eq!(
        first.assignment, second.assignment,
        "no rebalance between them"
    );
    // a second member joins: the first member's partitions change
    let mut b = bus.subscribe(&t, "numbered").await.unwrap();
    let joined = tokio::spawn(async move {
        loop {
            let r = b.next().await.unwrap();
            b.commit(&r).unwrap();
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut n = 2u8;
    loop {
        send(n).await;
        n = n.wrapping_add(1);
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_millis(250), a.next()).await {
            a.commit(&r).unwrap();
            if r.assignment != first.assignment {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records still read under the first assignment after a member joined"
        );
    }
    joined.abort();
}

/// A handler that fails (its store refuses, say) gets its record again in
/// its place after a backoff, from the same member: the consumer does not
/// leave and re-join the group (the record's assignment stays the same),
/// and every record is handled to success once.
#[tokio::test]
async fn a_failing_handler_gets_its_record_again_without_leaving_the_group() {
    let (bus, _dir) = test_bus().await;
    let base = akm::events::TradeRecorded {
        trace_id: "t".into(),
        recorded_at: 0,
        subject_id: "s".into(),
        city_no: "340100000000".into(),
        target_type: "3401002".into(),
        target_name: "x".into(),
        target_ref: "r".into(),
        trade_time: "20200628193425".into(),
        trade_no: "FAIL".into(),
        msg: "m".into(),
        trade_state: "1".into(),
    };
    let mut nos = vec!["FAIL".to_string()];
    bus.send(&base).await.unwrap();
    for i in 0..3 {
        let e = akm::events::TradeRecorded {
            trade_no: format!("OK-{i}"),
            ..base.clone()
        };
        bus.send(&e).await.unwrap();
        nos.push(e.trade_no);
    }
    // (tradeNo, the record's assignment, succeeded)
    let handled: Arc<Mutex<Vec<(String, u64, bool)>>> = Arc::default();
    let cancel = tokio_util::sync::CancellationToken::new();
    let worker = {
        let (handled, bus, cancel) = (handled.clone(), bus.clone(), cancel.clone());
        tokio::spawn(async move {
            akm::workers::consume::<akm::events::TradeRecorded, _, _>(
                bus,
                cancel,
                "failing-handler",
                None,
                move |ev, rec, attempt| {
                    let handled = handled.clone();
                    async move {
                        let ok = ev.trade_no != "FAIL" || attempt >= 2;
                        handled
                            .lock()
                            .unwrap()
                            .push((ev.trade_no, rec.assignment, ok));
                        if ok {
                            Ok(akm::workers::Flow::Commit)
                        } else {
                            Err(akm::workers::WorkerError::Store(
                                akm::store::StoreError::Transaction("no space".into()),
                            ))
                        }
                    }
                },
            )
            .await
        })
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let done: BTreeSet<String> = handled
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, ok)| *ok)
            .map(|(n, _, _)| n.clone())
            .collect();
        if nos.iter().all(|n| done.contains(n)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all handled: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cancel.cancel();
    let _ = worker.await;
    let h = handled.lock().unwrap().clone();
    for n in &nos {
        let successes = h.iter().filter(|(x, _, ok)| x == n && *ok).count();
        assert_eq!(successes, 1, "{n}: {h:?}");
    }
    let fails: Vec<u64> = h
        .iter()
        .filter(|(x, _, _)| x == "FAIL")
        .map(|(_, a, _)| *a)
        .collect();
    assert_eq!(fails.len(), 3, "tried three times: {h:?}");
    assert!(
        fails.iter().all(|a| *a == fails[0]),
        "the member re-joined: {h:?}"
    );
}
