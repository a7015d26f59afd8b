//! The API description: `GET /openapi.json` is a valid OpenAPI document
//! (checked by Python's openapi-spec-validator), documents exactly the
//! routes each role's router has, with the spec's field names, aliases,
//! errCodes and signing headers; `GET /docs` serves its UI offline.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

/// The (METHOD, path) routes of `src/api/router.rs` for a role: the
/// common ones and those of the role's own function.
fn router_routes(province: bool) -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/api/router.rs");
    let mut out = BTreeSet::new();
    let mut section = "";
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        // which function the route is in: the last `fn NAME(` before it
        let before = &rest[..at];
        if let Some(f) = before.rfind("fn ") {
            section = before[f + 3..].split('(').next().unwrap_or("").trim();
        }
        let call = &rest[at + ".route(".len()..];
        // the call's text, to its closing parenthesis
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap();
        let text = &call[..end];
        let path = text.split('"').nth(1).unwrap().to_string();
        let mine = match section {
            "common" => true,
            "province" => province,
            "city" => !province,
            other => panic!("a route in fn {other}"),
        };
        if mine {
            for m in ["get", "post", "put", "delete"] {
                let served = text.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0
                        || !text.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && text.as_bytes()[i - 1] != b'_'
                });
                if served {
                    out.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        rest = &call[end..];
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Python's openapi-spec-validator over the document (the test script's
/// venv has it; a run without `AKM_TEST_PYTHON` outside CI skips this).
fn validate(doc: &Value) {
    let Ok(python) = std::env::var("AKM_TEST_PYTHON") else {
        assert!(
            std::env::var("CI").is_err(),
            "AKM_TEST_PYTHON must be set in CI"
        );
        eprintln!("AKM_TEST_PYTHON unset: the document is not validated");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not a valid OpenAPI document: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn each_role_documents_exactly_its_routes_in_a_valid_document() {
    let app = spawn().await;
    let http = reqwest::Client::new();
    for (base, province) in [(app.province(), true), (app.city(), false)] {
        let r = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "unsigned, like the probes");
        let doc: Value = r.json().await.unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            doc["openapi"]
        );
        validate(&doc);
        let (routes, docs) = (router_routes(province), documented(&doc));
        assert!(routes.len() > 15, "{routes:?}");
        assert_eq!(
            docs.difference(&routes).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented but not routed (province: {province})"
        );
        assert_eq!(
            routes.difference(&docs).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "routed but not documented (province: {province})"
        );
    }
}

#[tokio::test]
async fn the_document_uses_the_spec_s_names_codes_and_signing_headers() {
    let app = spawn().await;
    let doc: Value = reqwest::get(format!("{}/openapi.json", app.province()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &doc["components"]["schemas"];
    let props = |s: &str| -> BTreeSet<String> {
        schemas[s]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let required = |s: &str| -> BTreeSet<String> {
        schemas[s]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        props("TranscodeRequest"),
        set(&[
            "cityNo",
            "qrCodeUrl",
            "targetType",
            "sceneCode",
            "senceCode",
            "targetObject"
        ])
    );
    assert_eq!(
        required("TranscodeRequest"),
        set(&["cityNo", "qrCodeUrl", "targetType"])
    );
    assert_eq!(
        required("CallbackRequest"),
        set(&[
            "cityNo",
            "name",
            "idcardNo",
            "targetType",
            "targetId",
            "tradeTime",
            "tradeNo",
            "msg",
            "tradeState"
        ])
    );
    assert!(props("CallbackRequest").contains("tradeType"), "the alias");
    assert!(props("ConfigQuery").contains("tradeType"), "the alias");
    assert_eq!(
        props("Identity"),
        set(&[
            "name",
            "idcardNo",
            "userPhone",
            "authType",
            "authObject",
            "healthLevel",
            "dataSource",
            "targetType",
            "targetId",
            "targetObject"
        ])
    );
    assert_eq!(
        props("TargetCode"),
        set(&["targetQrCode", "targetId", "targetObject"])
    );
    assert_eq!(
        props("TranscodeConfig"),
        set(&[
            "belongarea",
            "targetName",
            "targetType",
            "targetUrl",
            "sceneCode"
        ])
    );
    // the envelope and every errCode of the spec
    assert_eq!(props("Envelope"), set(&["flag", "errCode", "errMsg"]));
    let codes: BTreeSet<String> = schemas["Envelope"]["properties"]["errCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        codes,
        set(&[
            "200", "4001", "4002", "4003", "4004", "4005", "4006", "4007", "4008", "4010", "4011",
            "4013", "4029", "5000", "5001", "5002", "5003", "5004"
        ])
    );
    // the signing headers, all five required by a signed operation
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let headers: BTreeSet<String> = schemes
        .values()
        .map(|s| {
            assert_eq!(
                (s["type"].as_str(), s["in"].as_str()),
                (Some("apiKey"), Some("header"))
            );
            s["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        headers,
        set(&[
            "X-Akm-App-Id",
            "X-Akm-Timestamp",
            "X-Akm-Nonce",
            "X-Akm-Sign-Method",
            "X-Akm-Signature"
        ])
    );
    let transcode = &doc["paths"]["/api/v1/transcode"]["post"];
    assert_eq!(transcode["security"][0].as_object().unwrap().len(), 5);
    assert_eq!(
        transcode["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/TranscodeRequest"
    );
    let statuses: BTreeSet<String> = transcode["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        statuses,
        set(&["200", "400", "401", "403", "404", "429", "502", "503", "504"])
    );
    assert!(transcode["responses"]["404"]["description"]
        .as_str()
        .unwrap()
        .contains("4003"));
    assert!(
        doc["paths"]["/livez"]["get"].get("security").is_none(),
        "probes are unsigned"
    );
    // the city's document has no province-only admin
    let city: Value = reqwest::get(format!("{}/openapi.json", app.city()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(city["paths"].get("/admin/v1/residents").is_none());
    assert!(doc["paths"].get("/admin/v1/residents").is_some());
}

#[tokio::test]
async fn the_docs_ui_is_served_from_the_binary() {
    let app = spawn().await;
    let base = app.city();
    let page = reqwest::get(format!("{base}/docs")).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/openapi.json") && !html.contains("http"),
        "no CDN: {html}"
    );
    for (asset, kind) in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "css"),
    ] {
        let r = reqwest::get(format!("{base}/docs/{asset}")).await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.headers()["content-type"].to_str().unwrap().contains(kind));
        assert!(r.bytes().await.unwrap().len() > 100_000, "{asset}");
    }
    let r = reqwest::get(format!("{base}/docs/nothing.js"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
