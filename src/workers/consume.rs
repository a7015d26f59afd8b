//! The consume loop every worker runs: decode each record (undecodable ->
//! DLQ), run the handler, commit after it. Up to `window` records of one
//! partition are handled at once; commits still go in offset order (a
//! record is committed only when it and every record before it in its
//! partition are done), so a crash redelivers from the first record not
//! done. A handler that must wait answers [`Flow::RetryAfter`]: its record
//! waits on a timer and keeps its place in the window; what arrives behind
//! a full window queues, and a partition with a long queue is paused,
//! never slept on inside the poll loop. With a
//! window of 1 this is one record at a time per partition, in order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{dead_letter, Flow, WorkerError};
use crate::bus::{Bus, BusConsumer, Channel, Consumer, Record};
use crate::events;

/// Where a taken record of a partition stands.
#[derive(Debug)]
enum Slot {
    /// Its handler runs.
    Running,
    /// Done, waiting for the records before it to be done too.
    Done(Record),
    /// To be tried again at `due`.
    Waiting {
        record: Record,
        due: Instant,
        attempts: u32,
    },
}

/// One partition as this member works it.
#[derive(Debug, Default)]
struct Lane {
    /// The records taken (at most the window), by offset.
    taken: BTreeMap<u64, Slot>,
    /// Records delivered while the window was full (past [`BACKLOG`] of
    /// them the partition is paused).
    backlog: VecDeque<Record>,
    /// The highest offset seen: repeats of a replayed fetch are dropped.
    seen: Option<u64>,
    paused: bool,
    /// The next offset not done (for the lag in `/metrics`).
    position: Option<u64>,
}

impl Lane {
    /// Whether `r` is new to this lane: false for a repeat (a replayed
    /// fetch, or a rebalance handing back what this member still holds).
    fn fresh(&mut self, r: &Record) -> bool {
        if self.seen.is_some_and(|s| r.offset <= s) {
            return false;
        }
        self.seen = Some(r.offset);
        true
    }

    /// The done records at the front: the last one is what to commit.
    fn done_front(&mut self) -> Option<Record> {
        let mut last = None;
        while let Some(entry) = self.taken.first_entry() {
            if !matches!(entry.get(), Slot::Done(_)) {
                break;
            }
            if let Slot::Done(r) = entry.remove() {
                last = Some(r);
            }
        }
        last
    }
}

/// Records of a partition held beyond its window before the partition is
/// paused. Pausing a Kafka partition drops what the client fetched ahead
/// and fetches it again on resume, which costs a fetch round (on Tansu,
/// about a second) per record if every record beyond a window of one
/// paused it: a short queue instead, and a pause only for a real backlog
/// (a handler waiting to retry, a slow effect).
const BACKLOG: usize = 256;

/// A failed handler's record is tried again after this long, every time:
/// what fails here is the node's own store or a DLQ publish, which come
/// back by themselves (space freed, the broker back), and the records
/// behind it wait meanwhile, so a growing backoff would only hold them
/// longer once it has.
const FAILED_WAIT: Duration = Duration::from_secs(1);

/// What a finished handler run reports.
type Outcome = (Record, u32, Result<Flow, WorkerError>);

/// Consume `E`'s topic in `group` until cancelled, one record at a time per
/// partition (see [`consume_window`]).
pub async fn consume<E, F, Fut>(
    bus: Bus,
    cancel: CancellationToken,
    group: &str,
    ready: Option<tokio::sync::mpsc::Sender<()>>,
    handle: F,
) where
    E: Channel,
    F: Fn(E, Record, u32) -> Fut,
    Fut: Future<Output = Result<Flow, WorkerError>>,
{
    consume_window(bus, cancel, group, ready, 1, handle).await
}

/// Consume `E`'s topic in `group` until cancelled, handling up to `window`
/// records of a partition at once and committing in offset order. `ready`
/// is told once the member first holds partitions.
pub async fn consume_window<E, F, Fut>(
    bus: Bus,
    cancel: CancellationToken,
    group: &str,
    ready: Option<tokio::sync::mpsc::Sender<()>>,
    window: usize,
    handle: F,
) where
    E: Channel,
    F: Fn(E, Record, u32) -> Fut,
    Fut: Future<Output = Result<Flow, WorkerError>>,
{
    let window = window.max(1);
    let name = bus.topics().name(E::TOPIC);
    let Some(mut consumer) = subscribe(&bus, &cancel, &name, group).await else {
        return;
    };
    if let Some(tx) = ready {
        let mut assigned = consumer.assigned();
        tokio::spawn(async move {
            if assigned.wait_for(|a| *a).await.is_ok() {
                let _ = tx.send(()).await;
            }
        });
    }
    // One run of the handler (or the DLQ for what does not decode).
    let run = |record: Record, attempt: u32| {
        // one span per worker step, in the record's trace
        let parent = record
            .header(crate::trace::HEADER)
            .and_then(crate::trace::TraceParent::parse);
        let span = tracing::info_span!(
            "record",
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            trace_id = parent.as_ref().map(|t| t.trace_id()).unwrap_or_default(),
        );
        if let Some(p) = &parent {
            crate::trace::link(&span, p);
        }
        let work = match events::decode_any::<E>(&record.payload, bus.topics().schema_ids()) {
            Ok(ev) => {
                futures::future::Either::Left(handle(ev, record.clone(), attempt).instrument(span))
            }
            Err(e) => {
                tracing::error!(error = %e, topic = %name, offset = record.offset, "undecodable record to DLQ");
                let (bus, r, reason) = (bus.clone(), record.clone(), format!("decode: {e}"));
                futures::future::Either::Right(async move {
                    dead_letter(&bus, E::TOPIC, &r, &reason)
                        .await
                        .map(|_| Flow::Commit)
                        .map_err(WorkerError::from)
                })
            }
        };
        async move { (record, attempt, work.await) }
    };
    let mut lanes: HashMap<u32, Lane> = HashMap::new();
    let mut running = FuturesUnordered::new();
    // what this member holds, for /readyz: looked at every second, and
    // forgotten when the member ends (however it ends)
    let holding = Holding {
        owned: bus.owned().clone(),
        metrics: bus.metrics().clone(),
        topic: name.clone(),
        group: group.to_string(),
        member: rand::random(),
    };
    let mut look = tokio::time::interval(Duration::from_secs(1));
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let next_due = lanes
            .values()
            .flat_map(|l| l.taken.values())
            .filter_map(|s| match s {
                Slot::Waiting { due, .. } => Some(*due),
                _ => None,
            })
            .min();
        tokio::select! {
            _ = cancel.cancelled() => {
                // Shutting down: start nothing more, but let the runs in
                // flight finish and commit them, so an effect that happened
                // (a push) is recorded and not repeated after the restart.
                // The platform bounds this by its shutdown timeout.
                while let Some(outcome) = running.next().await {
                    if !matches!(settle(&mut lanes, &mut consumer, &holding, window, outcome), Settled::Go(_)) {
                        break;
                    }
                }
                return;
            }
            Some(outcome) = running.next(), if !running.is_empty() => {
                match settle(&mut lanes, &mut consumer, &holding, window, outcome) {
                    Settled::Go(start) => {
                        for r in start {
                            running.push(run(r, 0));
                        }
                    }
                    Settled::Stop => return,
                }
            }
            _ = look.tick() => {
                holding.report(consumer.owned());
                for (p, lane) in &lanes {
                    if let Some(next) = lane.position {
                        holding.position(*p, next);
                    }
                }
            }
            _ = sleep_until(next_due) => {
                let now = Instant::now();
                for lane in lanes.values_mut() {
                    for slot in lane.taken.values_mut() {
                        if matches!(slot, Slot::Waiting { due, .. } if *due <= now) {
                            if let Slot::Waiting { record, attempts, .. } = std::mem::replace(slot, Slot::Running) {
                                running.push(run(record, attempts));
                            }
                        }
                    }
                }
            }
            r = consumer.next() => match r {
                Ok(r) => {
                    let p = r.partition;
                    let lane = lanes.entry(p).or_default();
                    if !lane.fresh(&r) {
                        continue;
                    }
                    lane.position.get_or_insert(r.offset);
                    if lane.taken.len() < window && lane.backlog.is_empty() {
                        lane.taken.insert(r.offset, Slot::Running);
                        running.push(run(r, 0));
                        continue;
                    }
                    // the window is full: hold it, and past a short queue
                    // stop the partition (again: a rebalance clears pauses)
                    // until there is room
                    lane.backlog.push_back(r);
                    if lane.backlog.len() >= BACKLOG {
                        match consumer.pause(p) {
                            Ok(()) => lane.paused = true,
                            Err(e) => tracing::error!(error = %e, topic = %name, partition = p, "pause failed"),
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, topic = %name, "consume failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    }
}

/// A group member's entry in the bus's [`crate::bus::Owned`], and its
/// metrics.
struct Holding {
    owned: crate::bus::Owned,
    metrics: crate::metrics::Metrics,
    topic: String,
    group: String,
    member: u64,
}

impl Holding {
    fn report(&self, partitions: Vec<u32>) {
        self.owned
            .report(&self.topic, &self.group, self.member, partitions);
    }

    /// Everything before `next` on `partition` is done.
    fn position(&self, partition: u32, next: u64) {
        self.owned
            .position(&self.topic, &self.group, partition, next);
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.report(Vec::new());
    }
}

/// What to do after a handler run finished.
enum Settled {
    /// Go on; start these records (moved from a backlog into the window).
    Go(Vec<Record>),
    /// Shutting down.
    Stop,
}

/// Record a finished run in its lane: commit what is done at the front,
/// move backlog into the window, resume a partition with room again.
fn settle(
    lanes: &mut HashMap<u32, Lane>,
    consumer: &mut impl BusConsumer,
    holding: &Holding,
    window: usize,
    (record, attempt, result): Outcome,
) -> Settled {
    let p = record.partition;
    let name = holding.topic.as_str();
    let Some(lane) = lanes.get_mut(&p) else {
        return Settled::Go(Vec::new()); // from before a restart of the loop
    };
    let wait = match result {
        Ok(Flow::Commit) => None,
        Ok(Flow::RetryAfter(wait)) => Some(wait),
        Ok(Flow::Stop) => return Settled::Stop,
        Err(e) => {
            // The side effect could not be recorded (the store, a DLQ
            // publish): the same record again after a second, in its
            // place, nothing behind it committed meanwhile. The consumer
            // stays: dropping and re-joining it churned the group every
            // second, and librdkafka aborts the process when a consumer
            // is dropped while an assignment is in progress.
            let wait = FAILED_WAIT;
            tracing::error!(error = %crate::service::chain(&e), topic = %name, offset = record.offset, wait_ms = wait.as_millis() as u64, "handler failed; the record is tried again");
            Some(wait)
        }
    };
    if let Some(wait) = wait {
        holding.metrics.retry(name);
        lane.taken.insert(
            record.offset,
            Slot::Waiting {
                record,
                due: Instant::now() + wait,
                attempts: attempt + 1,
            },
        );
        return Settled::Go(Vec::new());
    }
    lane.taken.insert(record.offset, Slot::Done(record));
    if let Some(last) = lane.done_front() {
        if let Err(e) = consumer.commit(&last) {
            tracing::error!(error = %e, topic = %name, "commit failed");
        }
        lane.position = Some(last.offset + 1);
    }
    let mut start = Vec::new();
    while lane.taken.len() < window {
        let Some(r) = lane.backlog.pop_front() else {
            break;
        };
        lane.taken.insert(r.offset, Slot::Running);
        start.push(r);
    }
    if lane.paused && lane.backlog.is_empty() && lane.taken.len() < window {
        match consumer.resume(p) {
            Ok(()) => lane.paused = false,
            Err(e) => {
                tracing::error!(error = %e, topic = %name, partition = p, "resume failed")
            }
        }
    }
    Settled::Go(start)
}

async fn subscribe(
    bus: &Bus,
    cancel: &CancellationToken,
    name: &str,
    group: &str,
) -> Option<Consumer> {
    loop {
        match bus.subscribe(name, group).await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::error!(error = %e, topic = %name, group, "subscribe failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Sleep until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
