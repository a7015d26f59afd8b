//! The direct synchronous chain, the benchmark's baseline: what the bus
//! path does, as one HTTP service with no bus. Its edge checks the
//! terminal's signature as the platform's does (SPEC §9), so the ratio of
//! the two measures the bus and not the signature.

use std::time::Duration;

use serde_json::{json, Value};

/// What the direct chain needs: a gate for its callers (the platform's, on
/// the city's app registry, with nonces of its own), the province's client
/// and the card system.
pub struct Direct {
    pub gate: akm::service::gate::Gate,
    pub province: akm::clients::province::ProvinceClient,
    pub http: reqwest::Client,
    pub card_url: String,
}

/// The direct synchronous chain, the baseline: the province's decode and
/// the card system's generate over HTTP, with the platform's own clients
/// and HTTP settings, and no bus. Its callers sign as terminals sign; it
/// answers the transcode envelope.
pub async fn direct_chain(d: Direct) -> String {
    async fn handle(
        axum::extract::State(d): axum::extract::State<std::sync::Arc<Direct>>,
        headers: axum::http::HeaderMap,
        uri: axum::http::Uri,
        body: axum::body::Bytes,
    ) -> axum::Json<Value> {
        let fail = |m: String| axum::Json(json!({"flag": "500", "errCode": "5000", "errMsg": m}));
        let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
        let sig = akm::service::gate::SignatureHeaders {
            app_id: h(akm::signing::H_APP_ID),
            timestamp: h(akm::signing::H_TIMESTAMP),
            nonce: h(akm::signing::H_NONCE),
            sign_method: h(akm::signing::H_SIGN_METHOD),
            signature: h(akm::signing::H_SIGNATURE),
        };
        let query = uri.query().unwrap_or("");
        if let Err(e) = d.gate.verify(&sig, "POST", uri.path(), query, &body) {
            return fail(format!("signature: {e}"));
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return fail("body".into());
        };
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let (Ok(city), Ok(token), Ok(target)) = (
            akm::domain::city::CityNo::parse(&field("cityNo")),
            akm::domain::qr::QrToken::from_url(&field("qrCodeUrl")),
            akm::domain::target::TargetType::parse(&field("targetType")),
        ) else {
            return fail("fields".into());
        };
        let timeout = Duration::from_secs(3);
        let who = match d
            .province
            .decode(&city, &token, &target, None, timeout)
            .await
        {
            Ok(who) => who,
            Err(e) => return fail(format!("decode: {e}")),
        };
        let req = akm::clients::card::GenerateRequest {
            city_no: city.as_str(),
            target_type: target.as_str(),
            scene_code: "",
            name: who.name.expose(),
            idcard_no: who.idcard_no.expose(),
            user_phone: who.user_phone.expose(),
            target_object: &who.target_object,
        };
        match akm::clients::card::generate(&d.http, &d.card_url, &req, timeout).await {
            Ok(codes) => axum::Json(
                json!({"flag": "200", "errCode": "200", "errMsg": "成功", "data": codes}),
            ),
            Err(e) => fail(format!("generate: {e}")),
        }
    }
    let router = axum::Router::new()
        .route("/direct", axum::routing::post(handle))
        .with_state(std::sync::Arc::new(d));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/direct")
}
