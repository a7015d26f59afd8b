//! A platform to measure (role `all`, real listeners, the simulators),
//! provisioned as an operator would: a resident with a card, a QR code,
//! the transcode config at the province, and signed apps for a terminal
//! and a card system at the city.

use serde_json::{json, Value};

use akm::config::{Secret, Settings};
use akm::domain::app::{AppId, AppKind, Scopes};
use akm::service::apps::Apps;
use akm::signing::{SignMethod, Signer};
use akm::Roles;

pub const ID: &str = "340102199003073238";
const OPS_SECRET: &str = "bench-operator-secret-0123456789abcdef";

/// A request signed as `signer` (SPEC §9), as every caller sends it.
pub fn signed(
    http: &reqwest::Client,
    signer: &Signer,
    method: reqwest::Method,
    url: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    let bytes = body.to_string().into_bytes();
    let now = chrono::Utc::now().timestamp_millis();
    let mut req = http
        .request(method.clone(), url)
        .header("Content-Type", "application/json");
    for (k, v) in signer.headers_for_url(method.as_str(), url, &bytes, now) {
        req = req.header(k, v);
    }
    req.body(bytes)
}

/// Register an app with a known secret directly in a node's store; its
/// id and secret.
pub async fn app(store: &akm::store::Store, id: &str, kind: AppKind) -> (String, String) {
    let secret = akm::service::apps::generate_secret();
    Apps {
        store: store.clone(),
        clock: akm::clock::system(),
        reference: akm::service::reference::Reference::local(store.clone()),
    }
    .ensure(
        &AppId::parse(id).expect("app id"),
        kind,
        Scopes::default(),
        &secret,
    )
    .await
    .expect("app");
    (id.to_string(), secret)
}

/// A running, provisioned platform.
pub struct Deployed {
    pub p: akm::Platform,
    pub province: String,
    pub city: String,
    pub terminal: (String, String),
    pub card_system: (String, String),
    /// A terminal's transcode body (the QR code issued for the resident).
    pub transcode: String,
    http: reqwest::Client,
    ops: Signer,
    config: Value,
    _dir: tempfile::TempDir,
}

/// Start role `all` with `settings` (data in a temp dir) and provision it.
pub async fn deploy(settings: Settings) -> Deployed {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        province_listen: "127.0.0.1:0".into(),
        city_listen: "127.0.0.1:0".into(),
        sim_card_listen: "127.0.0.1:0".into(),
        sim_push_listen: "127.0.0.1:0".into(),
        demo: Some(false),
        admin_app_id: Some("bench-ops".into()),
        admin_app_secret: Some(Secret::new(OPS_SECRET)),
        ..settings
    };
    let p = akm::start(settings, Roles::All).await.expect("start");
    let (province, city) = (
        p.province_url().expect("province"),
        p.city_url().expect("city"),
    );
    let card = p.card_sim.as_ref().expect("card sim");
    let city_store = &p.city.as_ref().expect("city").store;
    let terminal = app(city_store, "bench-terminal", AppKind::Terminal).await;
    let card_system = app(city_store, "bench-card", AppKind::CardSystem).await;
    let config = json!({"belongarea": "340100", "targetType": "3401002", "targetName": "合肥电子健康卡", "targetUrl": card.url("3401002"), "sceneCode": ""});
    card.add_card(ID, "3401002", "EHC-0001", "");
    let mut d = Deployed {
        province,
        city,
        terminal,
        card_system,
        transcode: String::new(),
        http: reqwest::Client::new(),
        ops: Signer::new("bench-ops", OPS_SECRET, SignMethod::HmacSha256),
        config,
        _dir: dir,
        p,
    };
    d.put(
        &format!("{}/admin/v1/transcode-configs", d.province),
        &d.config,
    )
    .await;
    d.put(&format!("{}/admin/v1/residents", d.province), &json!({"idcardNo": ID, "name": "张三", "userPhone": "15665439684", "healthLevel": "1", "dataSource": "1", "universalAuth": true})).await;
    let qr: Value = signed(
        &d.http,
        &d.ops,
        reqwest::Method::POST,
        &format!("{}/admin/v1/qrcodes", d.province),
        &json!({"idcardNo": ID, "ttlSeconds": 3600}),
    )
    .send()
    .await
    .expect("qr")
    .json()
    .await
    .expect("qr json");
    let qr = qr["data"]["qrCodeUrl"].as_str().expect("qrCodeUrl");
    d.transcode = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": "3401002"}).to_string();
    d
}

impl Deployed {
    /// An operator's signed PUT; it must succeed.
    pub async fn put(&self, url: &str, body: &Value) {
        let status = signed(&self.http, &self.ops, reqwest::Method::PUT, url, body)
            .send()
            .await
            .expect("put")
            .status();
        assert!(status.is_success(), "PUT {url}: {status}");
    }

    /// Give the city its own copy of the transcode config.
    pub async fn config_at_city(&self) {
        self.put(
            &format!("{}/admin/v1/transcode-configs", self.city),
            &self.config,
        )
        .await;
    }

    /// `akm-load` arguments for signed POSTs of `body` as `app`.
    pub fn signed_post((id, secret): &(String, String), body: String) -> Vec<String> {
        [
            "--method", "POST", "--app", id, "--secret", secret, "--body", &body,
        ]
        .map(str::to_string)
        .to_vec()
    }
}
