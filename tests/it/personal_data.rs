//! Personal data (SPEC §10): after a whole scenario no file of the data
//! directories, no line of any process's log and no byte of any topic
//! holds a plaintext ID number, name, phone or card id; decode still
//! answers them to an authorized caller. Keys: missing, wrong, rotated;
//! the subject key shared by province instances; HTTPS to a party behind a
//! test CA.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use akm::bus::BusConsumer;
use serde_json::json;

use crate::helpers::*;

const PERSON_ID: &str = "34010219800101777X";
const PERSON_NAME: &str = "欧阳测试员";
const PERSON_PHONE: &str = "13912345678";
const CARD_ID: &str = "EHC-PII-77";
const FUSED_ID: &str = "FUSED-PII-88";
const NEEDLES: [&str; 5] = [PERSON_ID, PERSON_NAME, PERSON_PHONE, CARD_ID, FUSED_ID];

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn find(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_personal_data_in_files_logs_or_topics() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    apply_topics(&s).await;
    let push =
        akm::sim::PushSim::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
            .unwrap();
    let mut env = crate::child::env(&s);
    env.push(("AKM_PUSH_URL", push.url()));
    env.push(("RUST_LOG", "info,akm=debug".into()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let node = crate::child::serve("all", dir.path(), &env, log.clone());
    let http = reqwest::Client::new();
    let ops = operator();
    let (province, city) = (node.province().clone(), node.city().clone());

    // provision the person, a fused card, apps, a card in the card system
    let r = call_json(
        &http,
        &ops,
        "PUT",
        &format!("{province}/admin/v1/residents"),
        &json!({
        "idcardNo": PERSON_ID, "name": PERSON_NAME, "userPhone": PERSON_PHONE,
        "healthLevel": "1", "dataSource": "1", "universalAuth": true}),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    let r = call_json(
        &http,
        &ops,
        "PUT",
        &format!("{province}/admin/v1/residents/{PERSON_ID}/cards/{HEALTH}"),
        &json!({"targetId": FUSED_ID}),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    let term = register_signer(&http, &city, "p-term", "terminal", json!({})).await;
    let card = register_signer(&http, &city, "p-card", "card-system", json!({})).await;
    http.put(format!("{}/sim/cards", node.card_sim()))
        .json(&json!({"idcardNo": PERSON_ID, "targetType": HEALTH, "targetId": CARD_ID}))
        .send()
        .await
        .unwrap();

    // transcode and decode answer the plaintext to authorized callers
    let qr = call_json(
        &http,
        &ops,
        "POST",
        &format!("{province}/admin/v1/qrcodes"),
        &json!({"idcardNo": PERSON_ID, "ttlSeconds": 3600}),
    )
    .await;
    let qr = qr["data"]["qrCodeUrl"].as_str().unwrap().to_string();
    let codes = call_json(
        &http,
        &term,
        "POST",
        &format!("{city}/api/v1/transcode"),
        &json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH}),
    )
    .await;
    assert_eq!(codes["data"][0]["targetId"], CARD_ID, "{codes}");
    let decode = json!({"cityNo": "340100", "qrCodeUrl": qr, "targetType": HEALTH});
    let who = call_json(
        &http,
        &card,
        "POST",
        &format!("{city}/api/v1/decode"),
        &decode,
    )
    .await;
    assert_eq!(
        (
            who["data"]["idcardNo"].as_str(),
            who["data"]["name"].as_str(),
            who["data"]["userPhone"].as_str()
        ),
        (Some(PERSON_ID), Some(PERSON_NAME), Some(PERSON_PHONE)),
        "{who}"
    );
    assert_eq!(who["data"]["targetId"], FUSED_ID);

    // callbacks through the province to pushes; one the province refuses (a
    // type only the city knows) goes to the city's dead-letter topic
    let trade = |no: &str, target: &str| {
        json!({
        "cityNo": "340100", "name": PERSON_NAME, "idcardNo": PERSON_ID, "targetType": target,
        "targetId": CARD_ID, "tradeTime": "20200628193425", "tradeNo": no, "msg": "交易成功", "tradeState": "1"})
    };
    let r = call_json(&http, &ops, "PUT", &format!("{city}/admin/v1/transcode-configs"), &json!({
        "belongarea": "340100", "targetType": "3401099", "targetName": "市内卡", "targetUrl": format!("{}/cards/3401099", node.card_sim()), "sceneCode": ""})).await;
    assert_eq!(r["errCode"], "200", "{r}");
    let r = call_json(
        &http,
        &card,
        "POST",
        &format!("{city}/api/v1/callback"),
        &trade("PII-DLQ", "3401099"),
    )
    .await;
    assert_eq!(r["errCode"], "200", "{r}");
    for no in ["PII-1", "PII-2"] {
        let r = call_json(
            &http,
            &card,
            "POST",
            &format!("{city}/api/v1/callback"),
            &trade(no, HEALTH),
        )
        .await;
        assert_eq!(r["errCode"], "200", "{r}");
    }
    assert!(push.wait_for(2, WAIT).await, "no pushes");
    assert_eq!(
        push.pushes()[0]["idcardNo"],
        PERSON_ID,
        "the gateway gets the plaintext"
    );
    // the province refuses the city-only type: the city dead-letters it
    let deadline = tokio::time::Instant::now() + WAIT;
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("sent to DLQ"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a restart: the data opens again with the key the demo wrote
    drop(node);
    let node = crate::child::serve("all", dir.path(), &env, log.clone());
    let who = call_json(
        &http,
        &card,
        "POST",
        &format!("{}/api/v1/decode", node.city()),
        &decode,
    )
    .await;
    assert_eq!(who["data"]["idcardNo"], PERSON_ID, "{who}");
    drop(node);

    // now look everywhere
    for f in files(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for n in NEEDLES {
            assert!(!find(&bytes, n), "{n} in plaintext in {}", f.display());
        }
    }
    let all_log = log.lock().unwrap().join("\n");
    assert!(
        all_log.contains("resident saved"),
        "the log was not captured"
    );
    for n in NEEDLES {
        assert!(!all_log.contains(n), "{n} in the log");
    }
    if s.bus == akm::config::BusKind::Kafka {
        let bus = akm::bus::Bus::kafka(
            akm::bus::KafkaOptions::from_settings(&s),
            akm::bus::Topics::new(&s.topic_prefix).unwrap(),
        )
        .await
        .unwrap();
        let mut seen = 0;
        for d in bus.topics().declared() {
            let total = bus.count(&d.name).await.unwrap();
            if total == 0 {
                continue;
            }
            let mut c = bus.subscribe(&d.name, "pii-scan").await.unwrap();
            for _ in 0..total {
                let r = tokio::time::timeout(WAIT, c.next()).await.unwrap().unwrap();
                let mut raw = r.payload.clone();
                raw.extend(&r.key);
                for (k, v) in &r.headers {
                    raw.extend(k.as_bytes());
                    raw.extend(v.as_bytes());
                }
                for n in NEEDLES {
                    assert!(!find(&raw, n), "{n} in plaintext on {}", d.name);
                }
                seen += 1;
            }
        }
        assert!(seen > 0);
    }
}

/// `akm` with the test bus settings and `args`, in `dir`; its exit and stderr.
fn akm(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("AKM_BUS", "embedded")
        .env("AKM_PROVINCE_LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_resident(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("residents.jsonl");
    let line = json!({"idcardNo": PERSON_ID, "name": PERSON_NAME, "userPhone": PERSON_PHONE, "healthLevel": "1", "dataSource": "1", "universalAuth": true});
    std::fs::write(&file, format!("{line}\n")).unwrap();
    file
}

#[test]
fn a_missing_or_wrong_data_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("p");
    let file = one_resident(dir.path());
    let (ok, out, err) = akm(
        &data,
        &[("AKM_DATA_KEY", DATA_KEY)],
        &["import", file.to_str().unwrap()],
    );
    assert!(ok && out.contains("imported 1"), "{out} {err}");
    // no key: the node does not start
    let (ok, _, err) = akm(
        &data,
        &[("AKM_SUBJECT_KEY", SUBJECT_KEY)],
        &["serve", "--role", "province"],
    );
    assert!(
        !ok && err.contains("no data key") && err.contains("AKM_DATA_KEY"),
        "{err}"
    );
    // another key: a clear error, not garbage
    let other = akm::crypto::DataKey::generate(akm::crypto::CipherKind::Aes256Gcm);
    let (ok, _, err) = akm(
        &data,
        &[("AKM_DATA_KEY", &other), ("AKM_SUBJECT_KEY", SUBJECT_KEY)],
        &["serve", "--role", "province"],
    );
    assert!(!ok && err.contains("not configured"), "{err}");
    // a key of the wrong length
    let (ok, _, err) = akm(
        &data,
        &[
            ("AKM_DATA_KEY", "c2hvcnQ="),
            ("AKM_SUBJECT_KEY", SUBJECT_KEY),
        ],
        &["serve", "--role", "province"],
    );
    assert!(!ok && err.contains("bytes"), "{err}");
}

#[test]
fn akm_keys_rotate_re_seals_everything_under_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("p");
    let file = one_resident(dir.path());
    assert!(
        akm(
            &data,
            &[("AKM_DATA_KEY", DATA_KEY)],
            &["import", file.to_str().unwrap()]
        )
        .0
    );
    let (ok, new_key, _) = akm(&data, &[], &["keys", "new"]);
    assert!(ok);
    let key_file = dir.path().join("new.key");
    std::fs::write(&key_file, new_key.trim()).unwrap();
    let (ok, out, err) = akm(
        &data,
        &[("AKM_DATA_KEY", DATA_KEY)],
        &[
            "keys",
            "rotate",
            "--new-key-file",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("re-sealed under key"), "{out} {err}");
    let cipher = akm::crypto::CipherKind::Aes256Gcm;
    let open = |key: &str| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let r = rt.block_on(async {
            let durable = akm::durability::Durable::open(&data).unwrap();
            let keys = akm::crypto::Keyring::new(
                akm::crypto::DataKey::parse(cipher, key).unwrap(),
                vec![],
            );
            akm::store::Store::open(&durable, Arc::new(keys))
                .map(|s| {
                    s.resident(&akm::domain::IdcardNo::parse(PERSON_ID).unwrap())
                        .unwrap()
                        .map(|r| r.name.expose().to_string())
                })
                .map_err(|e| e.to_string())
        });
        drop(rt);
        r
    };
    assert_eq!(
        open(new_key.trim()),
        Ok(Some(PERSON_NAME.to_string())),
        "the new key opens the rotated data"
    );
    let old = open(DATA_KEY).unwrap_err();
    assert!(old.contains("not configured"), "{old}");
}

#[tokio::test]
async fn province_instances_with_one_subject_key_give_one_subject_id() {
    let mut subjects = Vec::new();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        let p = start(settings(dir.path()), akm::Roles::Province).await;
        let node = p.province.as_ref().unwrap();
        let http = reqwest::Client::new();
        let city = register_signer(&http, &node.url(), "s-city", "city", json!({})).await;
        let r = call_json(
            &http,
            &city,
            "POST",
            &format!("{}/api/v1/callback", node.url()),
            &trade("SUBJ-1"),
        )
        .await;
        assert_eq!(r["errCode"], "200", "{r}");
        let topic = node.bus.topics().name(akm::bus::Topic::Trade);
        let mut c = node.bus.subscribe(&topic, "subject-test").await.unwrap();
        let rec = tokio::time::timeout(WAIT, c.next()).await.unwrap().unwrap();
        let t: akm::events::TradeRecorded = akm::events::decode(&rec.payload).unwrap();
        subjects.push(t.subject_id);
        p.shutdown().await;
    }
    assert_eq!(subjects[0], subjects[1]);
    assert!(!subjects[0].is_empty() && !subjects[0].contains(ZHANG));
}

/// A TLS front (certificate of a test CA) for a plain listener.
async fn tls_front(
    to: std::net::SocketAddr,
    dir: &std::path::Path,
) -> (std::net::SocketAddr, std::path::PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "akm test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                }
            });
        }
    });
    (addr, ca_file)
}

#[tokio::test]
async fn a_push_gateway_behind_https_with_a_test_ca_receives_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let gateway =
        akm::sim::PushSim::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
            .unwrap();
    let (tls, ca_file) = tls_front(gateway.addr, dir.path()).await;
    let url = format!("https://localhost:{}/push", tls.port());
    let app = spawn_with(|s| {
        s.push_url = Some(url.clone());
        s.ca_file = Some(ca_file.clone());
    })
    .await;
    let (s, b) = app
        .post(&app.city(), "/api/v1/callback", &trade("TLS-1"))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(gateway.wait_for(1, WAIT).await, "no push over HTTPS");
    assert_eq!(gateway.pushes()[0]["tradeNo"], "TLS-1");
}

/// Kafka security settings are passed through to librdkafka, which refuses
/// what it does not know at start, before any broker is asked.
#[tokio::test]
async fn kafka_properties_pass_through_and_unknown_ones_stop_start_up() {
    let s = akm::config::Settings {
        kafka_properties: Some("security.protocol=SASL_SSL; no.such.property=1".into()),
        ..akm::config::Settings::default()
    };
    let opts = akm::bus::KafkaOptions::from_settings(&s);
    assert!(opts
        .properties
        .contains(&("security.protocol".into(), "SASL_SSL".into())));
    let e = akm::bus::KafkaBus::connect(opts, akm::bus::Topics::new("").unwrap())
        .await
        .unwrap_err();
    assert!(
        crate::helpers::chain(&e).contains("no.such.property"),
        "{}",
        crate::helpers::chain(&e)
    );
}
