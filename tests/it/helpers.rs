//! Starting a platform on free ports with a fresh data dir, and talking to it.

use std::time::Duration;

use akm::config::{BusKind, Secret, Settings};
use akm::domain::resident::QrGrant;
use akm::domain::{CityNo, QrToken};
use akm::signing::{SignMethod, Signer};
use akm::{Platform, Roles};
use serde_json::{json, Value};

pub const ZHANG: &str = "340102199003073238";
pub const WANG: &str = "34011119770101111X";
pub const HEALTH: &str = "3401002";
/// How long a test waits for an event before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// The operator app every test node bootstraps (`AKM_ADMIN_APP_ID`).
pub const OPERATOR: &str = "t-operator";
pub const OPERATOR_SECRET: &str = "t-operator-secret-0123456789abcdef0123";
/// The data key of every test node (AES-256-GCM, base64 of 32 bytes).
pub const DATA_KEY: &str = "dGVzdC1kYXRhLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE=";
/// The pseudonym key of every test province (base64 of 32 bytes).
pub const SUBJECT_KEY: &str = "dGVzdC1zdWJqZWN0LWtleS0wMTIzNDU2Nzg5YWJjZGU=";
/// The app test cities sign their calls to the province with.
pub const CITY_APP: &str = "t-city-340100";
pub const CITY_APP_SECRET: &str = "t-city-secret-0123456789abcdef0123456789";

pub struct App {
    pub p: Platform,
    pub http: reqwest::Client,
    /// The clock of the platform; signatures carry its time.
    pub clock: akm::clock::SharedClock,
    /// Who the helpers sign as: `operator`, `terminal` and `card` (at the
    /// city), `caller` (a city-kind app at the province, any scope).
    pub signers: std::collections::HashMap<&'static str, Signer>,
    /// The settings the platform started with (to start it again on its data).
    pub settings: Settings,
    pub _dir: tempfile::TempDir,
}

/// The backend under test: `AKM_TEST_BUS=kafka` (with `AKM_TEST_KAFKA_BROKERS`)
/// runs every scenario on Kafka; otherwise the embedded bus.
pub fn kafka() -> Option<String> {
    match std::env::var("AKM_TEST_BUS").as_deref() {
        Ok("kafka") => Some(
            std::env::var("AKM_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        ),
        _ => None,
    }
}

/// Settings for one test: free ports, its own data dir, and on Kafka its
/// own topic prefix (so tests never share topics).
pub fn settings(dir: &std::path::Path) -> Settings {
    let on_kafka = kafka().is_some();
    let (bus, kafka_brokers, topic_prefix) = match kafka() {
        Some(b) => (
            BusKind::Kafka,
            b,
            format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        ),
        None => (
            BusKind::Embedded,
            "127.0.0.1:9092".to_string(),
            String::new(),
        ),
    };
    Settings {
        bus,
        kafka_brokers,
        topic_prefix,
        data_dir: dir.to_path_buf(),
        province_listen: "127.0.0.1:0".into(),
        city_listen: "127.0.0.1:0".into(),
        sim_card_listen: "127.0.0.1:0".into(),
        sim_push_listen: "127.0.0.1:0".into(),
        demo: Some(false),
        admin_app_id: Some(OPERATOR.into()),
        admin_app_secret: Some(Secret::new(OPERATOR_SECRET)),
        province_app_id: Some(CITY_APP.into()),
        province_app_secret: Some(Secret::new(CITY_APP_SECRET)),
        data_key: Some(Secret::new(DATA_KEY)),
        subject_key: Some(Secret::new(SUBJECT_KEY)),
        retry_max: Duration::from_millis(200),
        workers: 2,
        // The Kafka suite shares one test broker (Tansu on sqlite) among
        // ~95 parallel tests on two cores: a hop can take seconds there. The
        // deadlines are longer so a slow broker is not read as a wrong
        // answer; the tests of the deadlines themselves set their own.
        transcode_timeout: Duration::from_millis(if on_kafka { 8_000 } else { 3_000 }),
        callback_timeout: Duration::from_millis(if on_kafka { 15_000 } else { 10_000 }),
        // the statistics' tallies go out five times faster than by default
        stats_flush: Duration::from_millis(200),
        ..Settings::default()
    }
}

/// Role `all` with the test data of [`provision`].
pub async fn spawn() -> App {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(f: impl FnOnce(&mut Settings)) -> App {
    spawn_clocked(f, akm::clock::system()).await
}

/// AKM_TEST_LOG=info shows the in-process platform's log in failing tests' output.
pub fn test_log() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("AKM_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// Role `all` on `clock` (a test moves time with a `ManualClock`).
pub async fn spawn_clocked(f: impl FnOnce(&mut Settings), clock: akm::clock::SharedClock) -> App {
    test_log();
    crate::watchdog::arm();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    f(&mut s);
    apply_topics(&s).await;
    let operator = s
        .admin_app_id
        .clone()
        .zip(s.admin_app_secret.clone())
        .map(|(id, secret)| Signer::new(id, secret.expose(), SignMethod::HmacSha256));
    let p = akm::start_with_clock(s.clone(), Roles::All, clock.clone())
        .await
        .unwrap();
    let mut app = App {
        p,
        settings: s,
        clock,
        signers: operator.into_iter().map(|o| ("operator", o)).collect(),
        // bounded, so a request that never answers fails naming its URL
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        _dir: dir,
    };
    if app.signers.contains_key("operator") {
        let (city, province) = (app.city(), app.province());
        for (who, base, id, kind) in [
            ("terminal", &city, "t-terminal", "terminal"),
            ("card", &city, "t-card", "card-system"),
            ("caller", &province, "t-caller", "city"),
        ] {
            let signer = app.register(base, id, kind, json!({})).await;
            app.signers.insert(who, signer);
        }
        app.provision().await;
    }
    app
}

/// Create the test's topics (Kafka), then start `roles`.
pub async fn start(s: Settings, roles: Roles) -> Platform {
    test_log();
    crate::watchdog::arm();
    apply_topics(&s).await;
    akm::start(s, roles).await.unwrap()
}

/// `akm topics apply` for these settings (Kafka only).
pub async fn apply_topics(s: &Settings) {
    if s.bus == BusKind::Kafka {
        let topics = akm::bus::Topics::new(&s.topic_prefix).unwrap();
        let bus = akm::bus::KafkaBus::connect(akm::bus::KafkaOptions::from_settings(s), topics)
            .await
            .unwrap();
        bus.apply().await.unwrap();
    }
}

impl App {
    pub fn province(&self) -> String {
        self.p.province_url().unwrap()
    }

    pub fn city(&self) -> String {
        self.p.city_url().unwrap()
    }

    pub fn card(&self) -> &akm::sim::CardSim {
        self.p.card_sim.as_ref().unwrap()
    }

    pub fn push(&self) -> &akm::sim::PushSim {
        self.p.push_sim.as_ref().unwrap()
    }

    pub fn province_node(&self) -> &akm::RunningNode {
        self.p.province.as_ref().unwrap()
    }

    pub fn city_node(&self) -> &akm::RunningNode {
        self.p.city.as_ref().unwrap()
    }

    /// Who the helpers sign a call to `base` + `path` as.
    pub fn signer_for(&self, base: &str, path: &str) -> Option<&Signer> {
        let who = if path.starts_with("/admin") {
            "operator"
        } else if base == self.province() {
            "caller"
        } else if path.starts_with("/api/v1/transcode") {
            "terminal"
        } else {
            "card"
        };
        self.signers.get(who)
    }

    /// POST JSON, signed as the helpers' app for the call; the status and body.
    pub async fn post(&self, base: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", base, path, body.to_string().into_bytes())
            .await
    }

    pub async fn put(&self, base: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call("PUT", base, path, body.to_string().into_bytes())
            .await
    }

    /// A signed request with these exact body bytes.
    pub async fn call(&self, method: &str, base: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let signer = self.signer_for(base, path);
        self.send(signed(
            &self.http,
            signer,
            &self.clock,
            method,
            &format!("{base}{path}"),
            body,
        ))
        .await
    }

    /// Register an app at `base` as the operator (`extra`: cityNos,
    /// targetTypes, rateLimit); a signer with its first secret.
    pub async fn register(&self, base: &str, id: &str, kind: &str, extra: Value) -> Signer {
        let secret = self.register_secret(base, id, kind, extra).await;
        Signer::new(id, secret, SignMethod::HmacSha256)
    }

    /// Register an app at `base`; its first secret.
    pub async fn register_secret(&self, base: &str, id: &str, kind: &str, extra: Value) -> String {
        register_app(&self.http, &self.clock, base, id, kind, extra).await
    }

    /// A JSON request signed by `signer`; the status and body.
    pub async fn send_as(
        &self,
        signer: &Signer,
        method: &str,
        url: &str,
        body: &Value,
    ) -> (u16, Value) {
        let bytes = body.to_string().into_bytes();
        self.send(signed(
            &self.http,
            Some(signer),
            &self.clock,
            method,
            url,
            bytes,
        ))
        .await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, v)
    }

    /// A health-card config for Hefei (scenes 01002, 01003) on both nodes,
    /// social security at province level, two residents, cards.
    async fn provision(&self) {
        let card_url = self.card().url(HEALTH);
        for base in [self.province(), self.city()] {
            let (s, b) = self
                .put(
                    &base,
                    "/admin/v1/transcode-configs",
                    &json!({
                    "belongarea": "340100", "targetType": HEALTH, "targetName": "合肥电子健康卡",
                    "targetUrl": card_url, "sceneCode": "01002,01003"}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
        }
        let (s, _) = self
            .put(
                &self.province(),
                "/admin/v1/transcode-configs",
                &json!({
                "belongarea": "340000000000", "targetType": "3400001", "targetName": "电子社保卡",
                "targetUrl": self.card().url("3400001"), "senceCode": ""}),
            )
            .await;
        assert_eq!(s, 200);
        for (id, name, phone, auth) in [
            (ZHANG, "张三", "15665439684", true),
            (WANG, "王五", "18655120000", false),
        ] {
            let (s, b) = self
                .put(
                    &self.province(),
                    "/admin/v1/residents",
                    &json!({
                    "idcardNo": id, "name": name, "userPhone": phone, "healthLevel": "1",
                    "dataSource": "1", "universalAuth": auth}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
        }
        let (s, _) = self
            .put(
                &self.province(),
                &format!("/admin/v1/residents/{ZHANG}/cards/{HEALTH}"),
                &json!({
                "targetId": "EHC-0001", "targetObject": "{\"level\":1}"}),
            )
            .await;
        assert_eq!(s, 200);
        self.card().add_card(ZHANG, HEALTH, "EHC-0001", "");
        self.card()
            .add_card(ZHANG, HEALTH, "EHC-0001-B", "{\"kid\":1}");
    }

    /// Ask the province for a QR code for a resident; the answer.
    pub async fn issue_qr(&self, id: &str) -> (u16, Value) {
        self.post(
            &self.province(),
            "/admin/v1/qrcodes",
            &json!({"idcardNo": id, "authType": "2", "authObject": "face-1"}),
        )
        .await
    }

    /// A fresh QR code URL for a resident.
    pub async fn qr(&self, id: &str) -> String {
        let (s, b) = self.issue_qr(id).await;
        assert_eq!(s, 200, "{b}");
        b["data"]["qrCodeUrl"].as_str().unwrap().to_string()
    }

    /// A QR code URL whose grant expired a second ago.
    pub fn expired_qr(&self, id: &str) -> String {
        let token = QrToken::generate();
        let grant = QrGrant {
            idcard_no: akm::domain::IdcardNo::parse(id).unwrap(),
            city_no: "340000000000".into(),
            auth_type: "1".into(),
            auth_object: String::new(),
            is_self: true,
            expires_at: chrono::Utc::now().timestamp_millis() - 1000,
        };
        let store = &self.province_node().store;
        assert!(store
            .put_sealed_qr(&token, &store.seal_qr(&grant).unwrap())
            .unwrap());
        token.url(&CityNo::province())
    }
}

/// A request signed by `signer` (unsigned when `None`) at `clock`'s time.
pub fn signed(
    http: &reqwest::Client,
    signer: Option<&Signer>,
    clock: &akm::clock::SharedClock,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(m, url);
    if let Some(s) = signer {
        for (k, v) in s.headers_for_url(method, url, &body, clock.now_ms()) {
            req = req.header(k, v);
        }
    }
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json");
    }
    req.body(body)
}

/// Register an app at `base` as the test operator (`extra`: cityNos,
/// targetTypes, rateLimit); its first secret.
pub async fn register_app(
    http: &reqwest::Client,
    clock: &akm::clock::SharedClock,
    base: &str,
    id: &str,
    kind: &str,
    extra: Value,
) -> String {
    let mut body = json!({"kind": kind});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let url = format!("{base}/admin/v1/apps/{id}");
    let req = signed(
        http,
        Some(&operator()),
        clock,
        "PUT",
        &url,
        body.to_string().into_bytes(),
    );
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    b["data"]["secret"].as_str().unwrap().to_string()
}

/// Register the test cities' own app ([`CITY_APP`]) at a province's store,
/// with its known secret, as an operator would.
pub async fn register_city_app(province: &akm::store::Store) {
    akm::service::apps::Apps {
        store: province.clone(),
        clock: akm::clock::system(),
        reference: akm::service::reference::Reference::local(province.clone()),
    }
    .ensure(
        &akm::domain::app::AppId::parse(CITY_APP).unwrap(),
        akm::domain::app::AppKind::City,
        akm::domain::app::Scopes::parse(&["3401".into()], &[]).unwrap(),
        CITY_APP_SECRET,
    )
    .await
    .unwrap();
}

/// A signed JSON request on the wall clock; the answer's JSON.
pub async fn call_json(
    http: &reqwest::Client,
    signer: &Signer,
    method: &str,
    url: &str,
    body: &Value,
) -> Value {
    let clock = akm::clock::system();
    signed(
        http,
        Some(signer),
        &clock,
        method,
        url,
        body.to_string().into_bytes(),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

/// Register an app at `base` as the test operator; a signer with its secret.
pub async fn register_signer(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    kind: &str,
    extra: Value,
) -> Signer {
    let secret = register_app(http, &akm::clock::system(), base, id, kind, extra).await;
    Signer::new(id, secret, SignMethod::HmacSha256)
}

/// The operator of the test settings.
pub fn operator() -> Signer {
    Signer::new(OPERATOR, OPERATOR_SECRET, SignMethod::HmacSha256)
}

/// A valid callback body.
pub fn trade(no: &str) -> Value {
    json!({
        "cityNo": "340100", "name": "张三", "idcardNo": ZHANG, "targetType": HEALTH,
        "targetId": "EHC-0001", "tradeTime": "20200628193425", "tradeNo": no,
        "msg": "交易成功", "tradeState": "1"
    })
}

/// Assert an error envelope: status, errCode, flag = status, errMsg mentions `needle`.
pub fn assert_err(got: &(u16, Value), status: u16, code: &str, needle: &str) {
    let (s, b) = got;
    assert_eq!(*s, status, "{b}");
    assert_eq!(b["errCode"], code, "{b}");
    assert_eq!(b["flag"], status.to_string(), "{b}");
    let msg = b["errMsg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "errMsg {msg:?} should mention {needle:?}"
    );
    assert!(
        msg.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "errMsg not Chinese: {msg}"
    );
}

/// A TCP front for a party that is down until [`Front::open`] points it at
/// the real listener: while down, every connection is closed at once. Its
/// own listener is bound before anyone is told its address.
pub struct Front {
    pub addr: std::net::SocketAddr,
    target: tokio::sync::watch::Sender<Option<std::net::SocketAddr>>,
}

impl Front {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (target, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = *rx.borrow();
                if let Some(to) = to {
                    tokio::spawn(async move {
                        if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        }
                    });
                }
            }
        });
        Front { addr, target }
    }

    /// From now on, connections go to `to`.
    pub fn open(&self, to: std::net::SocketAddr) {
        self.target.send_replace(Some(to));
    }
}

/// An error with its causes, on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    akm::service::chain(e)
}

/// Kafka group settings for tests that kill members: a dead member's
/// partitions move after 6 s, and a rebalance waits at most 10 s for the
/// members to rejoin (the workers never hold the poll loop that long).
pub fn fast_failover(s: akm::config::Settings) -> akm::config::Settings {
    akm::config::Settings {
        kafka_properties: Some("session.timeout.ms=6000;max.poll.interval.ms=10000".into()),
        ..s
    }
}

/// How long a supervisor waits before it restarts a killed node.
pub const RESTART_DELAY: Duration = Duration::from_secs(7);

/// Run the `akm` binary with `args` as the test operator app
/// (`AKM_ADMIN_APP_ID`, `AKM_ADMIN_APP_SECRET`).
pub fn akm_as_operator(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(args)
        .env("AKM_ADMIN_APP_ID", OPERATOR)
        .env("AKM_ADMIN_APP_SECRET", OPERATOR_SECRET)
        .output()
        .unwrap()
}
