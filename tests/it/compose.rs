//! docker-compose.yml and the Dockerfile cannot run here (no Docker
//! engine), so what can be checked without one is checked: every AKM_*
//! name they use is a setting, every akm command they run parses, and the
//! Dockerfile builds with the command CI runs.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{name}")).unwrap()
}

fn env_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("AKM_") {
        let start = i + pos;
        let mut end = start + 4;
        while end < b.len()
            && (b[end].is_ascii_uppercase() || b[end] == b'_' || b[end].is_ascii_digit())
        {
            end += 1;
        }
        out.push(text[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn every_env_name_in_compose_and_dockerfile_is_a_setting() {
    let settings = serde_json::to_value(akm::config::Settings::default()).unwrap();
    let keys = settings.as_object().unwrap();
    for file in ["docker-compose.yml", "Dockerfile"] {
        let names = env_names(&read(file));
        assert!(!names.is_empty());
        for name in names {
            let key = name.trim_start_matches("AKM_").to_lowercase();
            assert!(
                keys.contains_key(&key),
                "{file} uses {name}, which is not a setting"
            );
        }
    }
}

#[test]
fn every_akm_command_in_compose_parses() {
    let compose = read("docker-compose.yml");
    let commands: Vec<Vec<String>> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("command: "))
        .map(|c| serde_json::from_str(c).unwrap())
        .collect();
    assert!(commands.len() >= 4, "{commands:?}");
    for args in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_akm"))
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "akm {args:?} does not parse: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_dockerfile_builds_with_the_command_ci_runs() {
    let build = read("Dockerfile")
        .lines()
        .find_map(|l| l.strip_prefix("RUN cargo build"))
        .map(|rest| format!("cargo build{rest}"))
        .unwrap();
    assert!(
        read(".ci/run").lines().any(|l| l.trim() == build),
        "CI does not run `{build}`"
    );
}

#[test]
fn compose_runs_two_instances_of_each_role_behind_a_balancer_that_checks_readyz() {
    let compose = read("docker-compose.yml");
    let lb = read("deploy/haproxy.cfg");
    assert!(compose.contains("./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg"));
    for svc in ["province-1", "province-2", "city-1", "city-2"] {
        assert!(compose.contains(&format!("\n  {svc}:")), "no service {svc}");
        assert!(
            compose.contains(&format!("[\"{svc}-data:/var/lib/akm\"]")),
            "{svc} has no data volume of its own"
        );
        assert!(
            lb.contains(&format!("server {svc} {svc}:")),
            "the balancer does not send to {svc}"
        );
    }
    // an instance restoring its state answers 503 there: no traffic until ready
    assert!(lb.contains("option httpchk GET /readyz"));
    // the cities call the province through the balancer
    assert!(compose.contains("AKM_PROVINCE_URL: http://lb:8080"));
}

#[test]
fn compose_registers_the_schemas_in_apicurio_and_the_province_uses_it() {
    let compose = read("docker-compose.yml");
    assert!(compose.contains("\n  registry:\n    image: apicurio/apicurio-registry:"));
    assert!(compose.contains("\n  schemas:\n    <<: *akm\n    command: [\"schemas\", \"apply\"]"));
    let province = compose
        .split("\n  province-1:")
        .nth(1)
        .and_then(|p| p.split("\n  province-2:").next())
        .unwrap();
    assert!(province.contains("AKM_SCHEMA_REGISTRY_URL: http://registry:8080/apis/ccompat/v7"));
    assert!(province.contains("schemas: { condition: service_completed_successfully }"));
}

#[test]
fn compose_scrapes_every_instance_s_metrics() {
    let compose = read("docker-compose.yml");
    let prometheus = read("deploy/prometheus.yml");
    assert!(compose.contains("./deploy/prometheus.yml:/etc/prometheus/prometheus.yml"));
    // each instance directly: counters and lag are per instance
    for target in [
        "province-1:8080",
        "province-2:8080",
        "city-1:8081",
        "city-2:8081",
    ] {
        assert!(
            prometheus.contains(&format!("\"{target}\"")),
            "{target} not scraped"
        );
    }
}
