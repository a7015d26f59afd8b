//! Durability: the node's sled database and its group-commit flusher. The
//! store and the embedded bus both open their trees here and both wait on
//! the same flusher, so concurrent writers share one fsync instead of each
//! forcing their own.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// A failure to open the database or make writes durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DurabilityError {
    #[error("cannot create data directory {path}")]
    CreateDir {
        path: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("sled")]
    Sled(#[from] sled::Error),
    #[error("the flusher stopped")]
    FlusherStopped,
    /// A flush did not complete in time (a full or failing disk).
    #[error("flush did not complete within {0:?}")]
    Timeout(Duration),
}

/// The sled database of one node and its flusher. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Durable {
    db: sled::Db,
    flusher: Arc<Flusher>,
    /// The longest wait for a flush (`AKM_FLUSH_TIMEOUT_MS`).
    flush_timeout: Duration,
    /// Free space is above the watermark (`AKM_MIN_FREE_MB`).
    space: Arc<std::sync::atomic::AtomicBool>,
    /// The database refused a write after an I/O error. sled keeps such an
    /// error until it is opened again: only a restart clears it.
    failed: Arc<std::sync::atomic::AtomicBool>,
}

/// The key the watcher writes to find out whether the database still takes
/// writes.
const PROBE: &[u8] = b"\0akm.probe";

impl Durable {
    /// Report each flush's duration to `metrics` (the first node to ask).
    pub fn observe(&self, metrics: &crate::metrics::Metrics) {
        let _ = self.flusher.observer.set(metrics.clone());
    }
}

impl Durable {
    /// Open (or create) the database under `dir` with the default cache.
    /// Must run inside a tokio runtime (the flusher task is spawned here).
    pub fn open(dir: &Path) -> Result<Self, DurabilityError> {
        Self::open_with_cache(dir, crate::config::CACHE_MB)
    }

    /// Open (or create) the database under `dir` with a page cache of
    /// `cache_mb` MiB. Must run inside a tokio runtime.
    pub fn open_with_cache(dir: &Path, cache_mb: u64) -> Result<Self, DurabilityError> {
        std::fs::create_dir_all(dir).map_err(|source| DurabilityError::CreateDir {
            path: dir.display().to_string(),
            source: Arc::new(source),
        })?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mb.saturating_mul(1024 * 1024))
            .flush_every_ms(Some(200))
            .open()?;
        let flusher = Flusher::start(db.clone());
        Ok(Durable {
            db,
            flusher,
            flush_timeout: Duration::from_secs(5),
            space: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            failed: Arc::default(),
        })
    }

    /// Bound every flush wait by `t`.
    pub fn with_flush_timeout(mut self, t: Duration) -> Self {
        self.flush_timeout = t;
        self
    }

    /// Watch the free space of `dir` (every 250 ms, while this database
    /// lives): below `min_free_mb` the store answers 5003 to new writes
    /// before the disk is full. Every second, also write a probe key: once
    /// the database refuses it (sled's I/O errors stick), the node is
    /// [`failed`](Self::failed) until it is restarted.
    pub fn watch(&self, dir: &Path, min_free_mb: u64) {
        let space = Arc::downgrade(&self.space);
        let flusher = Arc::downgrade(&self.flusher);
        let failed = self.failed.clone();
        let dir = dir.to_path_buf();
        let min = min_free_mb * 1024 * 1024;
        tokio::spawn(async move {
            for tick in 0u64.. {
                if tick % 4 == 0 {
                    let Some(f) = flusher.upgrade() else { return };
                    probe(&f.db, &failed);
                }
                let Some(flag) = space.upgrade() else { return };
                let free = fs4::available_space(&dir).unwrap_or(u64::MAX);
                let ok = free >= min;
                if flag.swap(ok, std::sync::atomic::Ordering::Relaxed) != ok {
                    if ok {
                        tracing::info!(dir = %dir.display(), free_mb = free / 1024 / 1024, "free space above the watermark again");
                    } else {
                        tracing::error!(dir = %dir.display(), free_mb = free / 1024 / 1024, min_free_mb = min / 1024 / 1024, "free space below the watermark: new writes get 5003");
                    }
                }
                drop(flag);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    /// Free space is above the watermark.
    pub fn space_ok(&self) -> bool {
        self.space.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last flush succeeded and the database takes writes.
    pub fn healthy(&self) -> bool {
        self.flusher.healthy.load(Ordering::Relaxed) && !self.failed()
    }

    /// The database refuses writes for good (until a restart).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// A write failed with an I/O error: the database is failed from now
    /// on (sled keeps the error until it is reopened).
    pub fn mark_failed(&self, e: &std::io::Error) {
        fail(&self.failed, e);
    }

    /// Write the probe key now: false (and failed from now on) when the
    /// database refuses it. A readiness check calls this, so it is never
    /// green while writes fail.
    pub fn probe(&self) -> bool {
        probe(&self.db, &self.failed)
    }

    /// A tree of the database.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, DurabilityError> {
        Ok(self.db.open_tree(name)?)
    }

    /// The names of the database's trees.
    pub fn tree_names(&self) -> Vec<String> {
        self.db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// A process-unique, monotonic id.
    pub fn generate_id(&self) -> Result<u64, DurabilityError> {
        Ok(self.db.generate_id()?)
    }

    /// Wait until every write made before this call is on disk, at most
    /// the flush timeout.
    pub async fn sync(&self) -> Result<(), DurabilityError> {
        tokio::time::timeout(self.flush_timeout, self.flusher.sync())
            .await
            .map_err(|_| DurabilityError::Timeout(self.flush_timeout))?
    }
}

/// Write the probe key unless the database already failed; on a refusal,
/// mark it failed (sled keeps an I/O error until it is reopened).
fn probe(db: &sled::Db, failed: &std::sync::atomic::AtomicBool) -> bool {
    if failed.load(Ordering::Relaxed) {
        return false;
    }
    match db.insert(PROBE, &[]) {
        Ok(_) => true,
        Err(e) => {
            fail(failed, &e);
            false
        }
    }
}

/// Mark the database failed, saying so once.
fn fail(failed: &std::sync::atomic::AtomicBool, e: &dyn std::fmt::Display) {
    if !failed.swap(true, Ordering::Relaxed) {
        tracing::error!(error = %e, "the database refuses writes after an I/O error; writes answer 5003 and /livez is red until the process is restarted");
    }
}

/// Batches durability requests into as few flushes as possible. Its task
/// holds only a weak reference, so dropping the last [`Durable`] closes the
/// database (and releases sled's lock).
#[derive(Debug)]
struct Flusher {
    db: sled::Db,
    requested: AtomicU64,
    healthy: std::sync::atomic::AtomicBool,
    done: watch::Sender<u64>,
    wake: Arc<Notify>,
    /// Where each flush's duration goes (`akm_flush_duration_seconds`).
    observer: std::sync::OnceLock<crate::metrics::Metrics>,
}

impl Flusher {
    fn start(db: sled::Db) -> Arc<Self> {
        let (done, _) = watch::channel(0);
        let wake = Arc::new(Notify::new());
        let me = Arc::new(Flusher {
            db,
            requested: AtomicU64::new(0),
            healthy: std::sync::atomic::AtomicBool::new(true),
            done,
            wake: wake.clone(),
            observer: std::sync::OnceLock::new(),
        });
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                let Some(f) = weak.upgrade() else { return };
                // Gather: the writers already running queue theirs first, so
                // they join this flush. This was a 1 ms sleep while every
                // write flushed on its own (+30 % callbacks then,
                // BENCHMARKS.md). Now the writes that matter gather before
                // they get here (group transactions, windowed workers,
                // batched offsets), the flushes per callback are the same
                // without the sleep, and the millisecond was only latency:
                // callbacks +1 to +19 % without it (seventh session).
                tokio::task::yield_now().await;
                // Every ticket taken so far was taken after its write, so one
                // flush covers all of them.
                let target = f.requested.load(Ordering::Acquire);
                let started = std::time::Instant::now();
                loop {
                    // sled's own flush_async starts a thread per call (its
                    // io pool): under load that was half the CPU. One
                    // blocking flush at a time, on tokio's blocking pool.
                    let db = f.db.clone();
                    let flushed = tokio::task::spawn_blocking(move || db.flush())
                        .await
                        .unwrap_or_else(|e| {
                            Err(sled::Error::ReportableBug(format!("flush task: {e}")))
                        });
                    match flushed {
                        Ok(_) => {
                            f.healthy.store(true, Ordering::Relaxed);
                            if let Some(m) = f.observer.get() {
                                m.flushed(started.elapsed());
                            }
                            break;
                        }
                        Err(e) => {
                            if f.healthy.swap(false, Ordering::Relaxed) {
                                tracing::error!(error = %e, "sled flush failed; writes answer 5003 until it succeeds");
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                f.done.send_replace(target);
            }
        });
        me
    }

    async fn sync(&self) -> Result<(), DurabilityError> {
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut rx = self.done.subscribe();
        self.wake.notify_one();
        rx.wait_for(|done| *done >= ticket)
            .await
            .map(|_| ())
            .map_err(|_| DurabilityError::FlusherStopped)
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Let the task see that it is alone and end.
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_syncs_all_return_after_their_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d = Durable::open(dir.path()).unwrap();
        let t = d.tree("x").unwrap();
        let mut waits = Vec::new();
        for i in 0..50u32 {
            t.insert(i.to_be_bytes(), &[1]).unwrap();
            let d = d.clone();
            waits.push(tokio::spawn(async move { d.sync().await }));
        }
        for w in waits {
            w.await.unwrap().unwrap();
        }
        assert_eq!(t.len(), 50);
    }
}
