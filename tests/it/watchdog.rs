//! A bound on every test that starts a platform: one still running after
//! `AKM_TEST_TIMEOUT_SECS` (default 600) is named on stderr and the test
//! binary exits with 101. A hang (an await with no bound somewhere in the
//! platform or the test) then fails the run with the test's name instead of
//! running into CI's own time limit with nothing said.

use std::cell::RefCell;
use std::io::Write;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::Duration;

thread_local! {
    /// The watchdog of the test on this thread (libtest runs each test on
    /// a thread of its own, named after it). Dropped, and so disarmed,
    /// when the test's thread ends.
    static ARMED: RefCell<Option<Sender<()>>> = const { RefCell::new(None) };
}

/// Arm the watchdog of the test running on this thread, once.
pub fn arm() {
    ARMED.with(|armed| {
        let mut armed = armed.borrow_mut();
        if armed.is_none() {
            *armed = Some(start());
        }
    });
}

fn start() -> Sender<()> {
    let limit = std::env::var("AKM_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let (disarm, armed) = channel::<()>();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = armed.recv_timeout(Duration::from_secs(limit)) {
            // straight to stderr: libtest captures the print macros
            let _ = writeln!(
                std::io::stderr(),
                "\n{test} is still running after {limit} s (AKM_TEST_TIMEOUT_SECS): \
                 a hang; stopping the test binary"
            );
            std::process::exit(101);
        }
    });
    disarm
}
