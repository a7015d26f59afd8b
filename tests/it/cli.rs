//! The operator commands: bulk import of residents, replay of a DLQ.

use std::process::Command;

use akm::bus::{Bus, BusConsumer, Message, Topic, Topics};
use akm::durability::Durable;
use akm::store::Store;

fn akm(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("AKM_BUS", "embedded")
        .env("AKM_TOPIC_PREFIX", "")
        .env("AKM_DATA_KEY", crate::helpers::DATA_KEY)
        .output()
        .unwrap()
}

/// Run `f` on a runtime of its own that ends afterwards, so the sled
/// database is closed (and its lock released) when this returns.
fn with_store<T>(dir: &std::path::Path, f: impl AsyncFnOnce(Durable, Store) -> T) -> T {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(async {
        let durable = Durable::open(dir).unwrap();
        let store = Store::open(&durable, std::sync::Arc::new(test_keys())).unwrap();
        f(durable, store).await
    });
    drop(rt);
    out
}

/// The test nodes' data key.
pub fn test_keys() -> akm::crypto::Keyring {
    let cipher = akm::crypto::CipherKind::Aes256Gcm;
    akm::crypto::Keyring::new(
        akm::crypto::DataKey::parse(cipher, crate::helpers::DATA_KEY).unwrap(),
        vec![],
    )
}

#[test]
fn import_loads_valid_lines_and_reports_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("residents.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"idcardNo":"340102199003073238","name":"张三","userPhone":"15665439684","healthLevel":"1","dataSource":"1","universalAuth":true}"#, "\n",
            r#"{"idcardNo":"340104198805121234","name":"李四","userPhone":"13955110000","healthLevel":"2","dataSource":"2","universalAuth":false}"#, "\n",
            r#"{"idcardNo":"340104198805129999","name":"赵六","userPhone":"13955110001","healthLevel":"1","dataSource":"1"}"#, "\n",
            r#"{"idcardNo":"340104198805125678","name":"坏","userPhone":"1","healthLevel":"9"}"#, "\n",
            "not json\n",
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = akm(&["import", file.to_str().unwrap()], &data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("imported 2 residents, 3 lines rejected"),
        "{stdout}"
    );
    // the admin API's parser: a missing universalAuth is named, as the API names it
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3: 缺少必填字段：universalAuth"),
        "{stderr}"
    );
    with_store(&data, async |_, store: Store| {
        let r = store
            .resident(&akm::domain::IdcardNo::parse("340102199003073238").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!((r.name.expose(), r.universal_auth), ("张三", true));
        assert!(
            !store
                .resident(&akm::domain::IdcardNo::parse("340104198805121234").unwrap())
                .unwrap()
                .unwrap()
                .universal_auth
        );
        assert!(store
            .resident(&akm::domain::IdcardNo::parse("340104198805125678").unwrap())
            .unwrap()
            .is_none());
        assert!(store
            .resident(&akm::domain::IdcardNo::parse("340104198805129999").unwrap())
            .unwrap()
            .is_none());
    });
}

#[test]
fn replay_puts_dead_letters_back_on_their_topic() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::new("").unwrap();
    let (notify, dlq) = (topics.name(Topic::Notify), topics.dlq(Topic::Notify));
    with_store(dir.path(), async |durable, _| {
        let bus = Bus::embedded(&durable, topics.clone(), akm::clock::system()).unwrap();
        let m = Message::new(dlq.clone(), b"T-X".to_vec(), b"payload".to_vec())
            .header("dlqReason", "HTTP 400");
        bus.publish(m).await.unwrap();
    });
    let out = akm(&["replay", "akm.notify"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("replayed 1 records"), "{stdout}");
    with_store(dir.path(), async |durable, _| {
        let bus = Bus::embedded(&durable, topics.clone(), akm::clock::system()).unwrap();
        let mut c = bus.subscribe(&notify, "check").await.unwrap();
        let r = c.next().await.unwrap();
        assert_eq!(
            (r.key.as_slice(), r.payload.as_slice()),
            (&b"T-X"[..], &b"payload"[..])
        );
        assert!(r.header("dlqReason").is_none());
        assert!(r.header("replayedFrom").unwrap().starts_with(&dlq));
    });
    // a second replay finds nothing new
    let out = akm(&["replay", "akm.notify"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 0 records"));
}

/// `akm apps` wraps the apps API as the operator; `akm call` signs (here
/// with HMAC-SM3) as the new app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akm_apps_and_akm_call_provision_and_sign() {
    let app = crate::helpers::spawn().await;
    let city = app.city();
    let run = |args: Vec<String>| {
        let out = Command::new(env!("CARGO_BIN_EXE_akm"))
            .args(&args)
            .env("AKM_ADMIN_APP_ID", crate::helpers::OPERATOR)
            .env("AKM_ADMIN_APP_SECRET", crate::helpers::OPERATOR_SECRET)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let added = run(s(&[
        "apps",
        "add",
        "cli-term",
        "--kind",
        "terminal",
        "--city-nos",
        "3401",
        "--url",
        &city,
    ]));
    let secret = added["data"]["secret"].as_str().unwrap().to_string();
    let listed = run(s(&["apps", "list", "--url", &city]));
    assert!(listed.to_string().contains("cli-term") && !listed.to_string().contains(&secret));
    let rotated = run(s(&["apps", "rotate", "cli-term", "--url", &city]));
    assert!(rotated["data"]["secret"]
        .as_str()
        .is_some_and(|n| n != secret));
    let body =
        serde_json::json!({"cityNo": "340100", "targetType": crate::helpers::HEALTH}).to_string();
    let answer = run(s(&[
        "call",
        "--app",
        "cli-term",
        "--secret",
        &secret,
        "--sign-method",
        "HMAC-SM3",
        "POST",
        &format!("{city}/api/v1/transcode-config"),
        &body,
    ]));
    assert_eq!(answer["errCode"], "200", "{answer}");
    // an error answer: printed, exit status 1, one line on stderr and no
    // backtrace even when one is asked for
    let out = Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(s(&[
            "call",
            "--app",
            "cli-term",
            "--secret",
            &secret,
            "POST",
            &format!("{city}/api/v1/transcode"),
            "{}",
        ]))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout} {stderr}");
    assert!(stdout.contains("\"errCode\":\"4"), "{stdout}");
    assert_eq!(stderr.trim(), "Error: HTTP 400", "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line_and_a_bad_format_stops_start_up() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let s = crate::helpers::settings(dir.path());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::helpers::apply_topics(&s));
    let mut env = crate::child::env(&s);
    env.push(("AKM_LOG_FORMAT", "json".into()));
    let mut child = crate::child::command("all", dir.path(), &env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.map_while(Result::ok) {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        let message = v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if message.contains("listening") {
            assert!(v["fields"]["addr"].is_string(), "{line}");
        }
        let ready = message.contains("platform ready");
        seen.push(message);
        if ready {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|m| m.contains("platform ready")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|m| m.contains("listening")), "{seen:?}");

    let out = crate::child::command("all", dir.path(), &[("AKM_LOG_FORMAT", "yaml".into())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AKM_LOG_FORMAT"));
}

/// `akm` commits its allocator's arenas as it uses them (`src/alloc.rs`):
/// just started, it holds far less than with mimalloc's own eager commit,
/// which an operator's `MIMALLOC_ARENA_EAGER_COMMIT=2` brings back. On a
/// host with transparent huge pages off, the two do not differ, and there
/// is nothing to compare.
#[test]
fn akm_commits_its_allocator_arenas_on_demand() {
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.is_empty() || thp.contains("[never]") {
        eprintln!("transparent huge pages are off here ({thp:?}): nothing to compare");
        return;
    }
    let rss_kib = |extra: Option<(&'static str, String)>| -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::helpers::settings(dir.path());
        let mut env = crate::child::env(&s);
        // the allocator is the same on either bus; no topics to apply
        env.push(("AKM_BUS", "embedded".into()));
        env.extend(extra);
        let served = crate::child::serve("all", dir.path(), &env, Default::default());
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let on_demand = rss_kib(None);
    let eager = rss_kib(Some(("MIMALLOC_ARENA_EAGER_COMMIT", "2".into())));
    // about 25 MiB apart for the debug build on a 2-core test machine
    // (18 against 66 MiB for the release build)
    assert!(
        eager > on_demand + 12 * 1024,
        "RSS after start: {on_demand} KiB with arenas committed on demand, {eager} KiB with eager commit"
    );
    eprintln!("RSS after start: {on_demand} KiB on demand, {eager} KiB eager");
}
