//! The periodic chores each node runs under supervision: writing and
//! trimming the audit trail, pruning idempotency records, sweeping expired
//! QR grants.

use super::*;

/// Every `AKM_AUDIT_WRITE_MS`: write the queued audit records (the last
/// ones are written by `Platform::shutdown`).
pub(super) async fn write_audit(store: Store, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = store.write_audit() {
            tracing::error!(error = %crate::service::chain(&e), "audit records not written; they stay queued");
        }
    }
}

/// Every hour: remove audit records past their retention.
pub(super) async fn trim_audit(
    store: Store,
    clock: SharedClock,
    days: u32,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        let before = clock.now_ms() - i64::from(days) * 86_400_000;
        match store.trim_audit(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "audit records past retention removed"),
            Err(e) => tracing::error!(error = %crate::service::chain(&e), "audit trim failed"),
        }
    }
}

/// Every hour: prune idempotency records and delivered marks older than
/// `AKM_IDEMPOTENCY_DAYS`.
pub(super) async fn prune_idempotency(
    store: Store,
    clock: SharedClock,
    days: u32,
    cancel: CancellationToken,
) {
    loop {
        let before = clock.now_ms() - i64::from(days) * 86_400_000;
        match store.prune_trades(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "idempotency records past their keeping removed"
            ),
            Err(e) => {
                tracing::error!(error = %crate::service::chain(&e), "idempotency prune failed")
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// Every minute: remove expired QR grants (province).
pub(super) async fn sweep_qr(qr: QrIssuer, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        match qr.sweep() {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired QR tokens removed"),
            Err(e) => tracing::error!(error = %crate::service::chain(&e), "QR sweep failed"),
        }
    }
}
