//! `akm serve` as a child process for the tests that kill, stop or restart
//! it: every listener on port 0 (the child reports what it bound), its log
//! captured line by line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use crate::helpers::{DATA_KEY, OPERATOR, OPERATOR_SECRET, SUBJECT_KEY};

/// A running `akm serve --role ROLE` and the addresses it reported.
pub struct Served {
    pub child: Child,
    pub province: Option<String>,
    pub city: Option<String>,
    pub card_sim: Option<String>,
    /// Every line it logged so far (shared by its restarts when given).
    #[allow(dead_code)]
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    pub fn city(&self) -> String {
        self.city.clone().expect("no city listener")
    }

    pub fn province(&self) -> String {
        self.province.clone().expect("no province listener")
    }

    pub fn card_sim(&self) -> String {
        self.card_sim.clone().expect("no card simulator")
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The province listener's socket address (for a [`Front`](crate::helpers::Front)).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.province()
            .trim_start_matches("http://")
            .parse()
            .unwrap()
    }

    /// SIGTERM, then wait for the exit.
    pub fn term(&mut self) -> ExitStatus {
        assert!(Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `addr=` of a log line, as a URL.
pub fn addr_in(line: &str) -> Option<String> {
    let at = line.find("addr=")? + "addr=".len();
    let a: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    Some(format!("http://{}", a.trim_matches('"')))
}

/// The settings every test child takes: the test run's bus, the test
/// operator app, the test keys, short retries, the transcode deadline.
pub fn env(s: &akm::config::Settings) -> Vec<(&'static str, String)> {
    let mut e = vec![
        ("AKM_BUS", s.bus.as_str().to_string()),
        ("AKM_KAFKA_BROKERS", s.kafka_brokers.clone()),
        ("AKM_TOPIC_PREFIX", s.topic_prefix.clone()),
        ("AKM_ADMIN_APP_ID", OPERATOR.into()),
        ("AKM_ADMIN_APP_SECRET", OPERATOR_SECRET.into()),
        ("AKM_DATA_KEY", DATA_KEY.into()),
        ("AKM_SUBJECT_KEY", SUBJECT_KEY.into()),
        ("AKM_RETRY_MAX_MS", "200".into()),
        ("AKM_WORKERS", "2".into()),
        // as in-process tests: 8 s on the shared Kafka test broker, where
        // a fresh node's first transcode can take over the default 3 s
        (
            "AKM_TRANSCODE_TIMEOUT_MS",
            s.transcode_timeout.as_millis().to_string(),
        ),
    ];
    if let Some(p) = &s.kafka_properties {
        e.push(("AKM_KAFKA_PROPERTIES", p.clone()));
    }
    e
}

/// `akm serve --role ROLE` on `dir` with every listener on port 0 and `env`.
pub fn command(role: &str, dir: &std::path::Path, env: &[(&'static str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_akm"));
    cmd.args(["serve", "--role", role, "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    for name in [
        "AKM_PROVINCE_LISTEN",
        "AKM_CITY_LISTEN",
        "AKM_SIM_CARD_LISTEN",
        "AKM_SIM_PUSH_LISTEN",
    ] {
        cmd.env(name, "127.0.0.1:0");
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

/// Start `akm serve --role ROLE` on `dir` with `env` and wait for its
/// "platform ready"; its log goes to `log`.
pub fn serve(
    role: &str,
    dir: &std::path::Path,
    env: &[(&'static str, String)],
    log: Arc<Mutex<Vec<String>>>,
) -> Served {
    let mut cmd = command(role, dir, env);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut province, mut city, mut card_sim) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.lock().unwrap().push(line.clone());
        if line.contains("card-system simulator ready") {
            card_sim = addr_in(&line);
        } else if line.contains("listening") && line.contains("province") {
            province = addr_in(&line);
        } else if line.contains("listening") && line.contains("city") {
            city = addr_in(&line);
        }
        if line.contains("platform ready") {
            break;
        }
    }
    let keep = log.clone();
    // keep draining its log, so it never blocks on a full pipe
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            keep.lock().unwrap().push(line);
        }
    });
    assert!(
        province.is_some() || city.is_some(),
        "akm serve --role {role} did not come up"
    );
    Served {
        child,
        province,
        city,
        card_sim,
        log,
    }
}
