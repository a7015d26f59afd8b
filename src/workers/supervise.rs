//! Supervision: every long-running task runs under a supervisor that
//! restarts it with backoff when it ends (or panics) while the node is not
//! shutting down, logs it, and records it as down meanwhile; `/readyz`
//! lists what is down, the dashboard every task with its state.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::retry::Schedule;

/// The supervised tasks by name: `None` while up, else why it is down.
#[derive(Debug, Clone, Default)]
pub struct TaskHealth(Arc<Mutex<BTreeMap<String, Option<String>>>>);

impl TaskHealth {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<String>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `"name: why"` of every task that is down.
    pub fn down(&self) -> Vec<String> {
        self.map()
            .iter()
            .filter_map(|(n, w)| w.as_ref().map(|w| format!("{n}: {w}")))
            .collect()
    }

    /// Every task whose name starts with `prefix`, with why it is down
    /// (`None`: up).
    pub fn tasks(&self, prefix: &str) -> Vec<(String, Option<String>)> {
        self.map()
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, w)| (n.clone(), w.clone()))
            .collect()
    }
}

/// Run `make()` under supervision until `cancel`: when the task ends or
/// panics before that, it is recorded as down, restarted after a backoff
/// (200 ms doubling to 30 s), and recorded as up again.
pub fn supervise<F, Fut>(
    name: String,
    health: TaskHealth,
    cancel: CancellationToken,
    make: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schedule = Schedule::new(Duration::from_secs(30));
    tokio::spawn(async move {
        let mut restarts = 0u32;
        health.map().insert(name.clone(), None);
        loop {
            let ended = tokio::spawn(make()).await;
            if cancel.is_cancelled() {
                health.map().remove(&name);
                return;
            }
            let why = match ended {
                Ok(()) => "ended".to_string(),
                Err(e) if e.is_panic() => "panicked".to_string(),
                Err(e) => e.to_string(),
            };
            let wait = schedule.next(restarts);
            tracing::error!(task = %name, %why, wait_ms = wait.as_millis() as u64, "task stopped; restarting");
            health.map().insert(name.clone(), Some(why));
            tokio::select! {
                _ = cancel.cancelled() => {
                    health.map().remove(&name);
                    return;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            restarts = restarts.saturating_add(1);
            health.map().insert(name.clone(), None);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_task_that_ends_or_panics_is_restarted_and_shown_down_meanwhile() {
        let health = TaskHealth::default();
        let cancel = CancellationToken::new();
        let runs = Arc::new(AtomicU32::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let r = runs.clone();
        let h = health.clone();
        let task = supervise("flaky".into(), health.clone(), cancel.clone(), move || {
            let (r, tx, h) = (r.clone(), tx.clone(), h.clone());
            async move {
                let n = r.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(h.down());
                match n {
                    0 => {}                            // ends
                    1 => panic!("a bug"),              // panics
                    _ => std::future::pending().await, // runs
                }
            }
        });
        // the first run sees nothing down; the second and third start after a recorded failure
        assert!(rx.recv().await.unwrap().is_empty());
        assert!(
            rx.recv().await.unwrap().is_empty(),
            "up again once restarted"
        );
        assert!(rx.recv().await.unwrap().is_empty());
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(health.tasks("fl"), [("flaky".to_string(), None)]);
        assert!(health.tasks("other/").is_empty());
        cancel.cancel();
        // a cancelled task is not restarted
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        assert!(health.down().is_empty());
    }
}
