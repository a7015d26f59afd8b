//! What the API description says: the request and answer bodies with the
//! spec's field names and aliases, every operation of both roles (who may
//! call it, its body, its data, the errCodes it may answer) and the
//! signing headers. `mod.rs` turns these tables into the document.

use utoipa::openapi::HttpMethod;

use crate::signing;

/// A field's JSON type.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Str,
    Int,
    Bool,
    /// A list of strings.
    Strs,
}

/// A field: name, type, required, what it holds.
pub(super) struct F(pub &'static str, pub Ty, pub bool, pub &'static str);

const CITY: &str = "地市编码: 6 or 12 digits inside the province (34…); 6 digits are read as the 12-digit code padded with 000000 (v1.3).";
const QR: &str = "The URL the Ankang QR code holds; its id=akm:qrcode:<32 hex> is the token.";
const TARGET: &str = "目标码类型: 7 digits (SPEC §3). Alias: tradeType.";
const SCENE: &str = "场景编码 (appendix 8.2), optional; when given it must be known and served by the target. Alias: senceCode (the spec's tables spell it so).";
const ALIAS_SCENE: &str = "Alias of sceneCode.";
const ALIAS_TARGET: &str = "Alias of targetType.";

/// The request and answer bodies, by schema name.
pub(super) const SCHEMAS: &[(&str, &str, &[F])] = &[
    ("DecodeRequest", "识读 (7.2).", &[
        F("cityNo", Ty::Str, true, CITY),
        F("qrCodeUrl", Ty::Str, true, QR),
        F("targetType", Ty::Str, true, TARGET),
        F("sceneCode", Ty::Str, false, SCENE),
        F("senceCode", Ty::Str, false, ALIAS_SCENE),
    ]),
    ("TranscodeRequest", "转码 (7.3).", &[
        F("cityNo", Ty::Str, true, CITY),
        F("qrCodeUrl", Ty::Str, true, QR),
        F("targetType", Ty::Str, true, TARGET),
        F("sceneCode", Ty::Str, false, SCENE),
        F("senceCode", Ty::Str, false, ALIAS_SCENE),
        F("targetObject", Ty::Str, false, "Extra information for the card system, a JSON string (8.3)."),
    ]),
    ("CallbackRequest", "消息回传 (7.4): one trade. The same tradeNo again with the same content succeeds as a duplicate; with other content it is 409/4007.", &[
        F("cityNo", Ty::Str, true, CITY),
        F("name", Ty::Str, true, "The resident's name."),
        F("idcardNo", Ty::Str, true, "The resident's ID number (18 characters, checksum verified)."),
        F("targetType", Ty::Str, true, TARGET),
        F("tradeType", Ty::Str, false, ALIAS_TARGET),
        F("targetId", Ty::Str, true, "The card id at the card system."),
        F("tradeTime", Ty::Str, true, "yyyyMMddHHmmss."),
        F("tradeNo", Ty::Str, true, "The card system's trade number: with cityNo and targetType, the idempotency key."),
        F("msg", Ty::Str, true, "What happened, for the resident (at most 500 characters)."),
        F("tradeState", Ty::Str, true, "The trade's state (at most 32 characters); required although the spec's sample omits it."),
    ]),
    ("ConfigQuery", "转码配置信息查询 (7.5): the lookup goes from the cityNo to its prefecture to the province.", &[
        F("cityNo", Ty::Str, true, CITY),
        F("targetType", Ty::Str, true, TARGET),
        F("tradeType", Ty::Str, false, ALIAS_TARGET),
    ]),
    ("Identity", "The resident behind a QR code (decode's data).", &[
        F("name", Ty::Str, true, "姓名."),
        F("idcardNo", Ty::Str, true, "身份证号."),
        F("userPhone", Ty::Str, true, "手机号."),
        F("authType", Ty::Str, true, "授权类型."),
        F("authObject", Ty::Str, true, "授权对象."),
        F("healthLevel", Ty::Str, true, "健康等级: 1 green, 2 yellow, 3 red."),
        F("dataSource", Ty::Str, true, "数据来源."),
        F("targetType", Ty::Str, true, "目标码类型."),
        F("targetId", Ty::Str, true, "The resident's card id for the target type (empty when none)."),
        F("targetObject", Ty::Str, true, "The card's extra information."),
    ]),
    ("TargetCode", "One target code (transcode's data is a list: several when the resident has several cards).", &[
        F("targetQrCode", Ty::Str, true, "The code for the terminal to show or read."),
        F("targetId", Ty::Str, true, "The card id."),
        F("targetObject", Ty::Str, true, "The card system's extra information."),
    ]),
    ("TranscodeConfig", "A transcode config (config query's data; the admin write's body).", &[
        F("belongarea", Ty::Str, true, "The cityNo it belongs to (6 or 12 digits; a prefecture or the province covers the codes under it)."),
        F("targetName", Ty::Str, true, "The card's name (at most 64 characters)."),
        F("targetType", Ty::Str, true, "目标码类型, 7 digits."),
        F("targetUrl", Ty::Str, true, "The card system's generate URL, http(s) (its host must be in AKM_CARD_HOSTS when that is set)."),
        F("sceneCode", Ty::Str, false, "Comma-separated scene codes it serves; empty: any. Alias: senceCode."),
    ]),
    ("Resident", "A resident (province).", &[
        F("idcardNo", Ty::Str, true, "身份证号."),
        F("name", Ty::Str, true, "姓名."),
        F("userPhone", Ty::Str, true, "手机号, 11 digits."),
        F("healthLevel", Ty::Str, true, "1, 2 or 3."),
        F("dataSource", Ty::Str, true, "数据来源."),
        F("universalAuth", Ty::Bool, true, "Whether the resident switched universal authorization on (off: decode is 4004)."),
    ]),
    ("FusedCard", "A resident's card of one target type (province).", &[
        F("targetId", Ty::Str, true, "The card id."),
        F("targetObject", Ty::Str, false, "Extra information."),
    ]),
    ("QrRequest", "Issue a QR code for a resident (province).", &[
        F("idcardNo", Ty::Str, true, "身份证号 of a known resident."),
        F("cityNo", Ty::Str, false, "Where it is issued (default: the province)."),
        F("authType", Ty::Str, false, "授权类型 (default 2)."),
        F("authObject", Ty::Str, false, "授权对象 (at most 128 characters)."),
        F("ttlSeconds", Ty::Int, false, "Lifetime, 1 to 86400 (default AKM_QR_TTL_SECONDS)."),
        F("isSelf", Ty::Bool, false, "Whether the resident shows it themselves (default true)."),
    ]),
    ("Issued", "An issued QR code.", &[
        F("qrCodeUrl", Ty::Str, true, "The URL to encode in the QR image."),
        F("expiresAt", Ty::Str, true, "When it expires."),
    ]),
    ("AppInput", "Register or update an app.", &[
        F("kind", Ty::Str, true, "terminal, card-system, city or operator."),
        F("cityNos", Ty::Strs, false, "cityNo prefixes it may use (\"3401\": the Hefei prefecture); empty: any."),
        F("targetTypes", Ty::Strs, false, "Target types it may use; empty: any."),
        F("rateLimit", Ty::Int, false, "Requests per second; 0 or absent: none."),
    ]),
    ("AppView", "An app as listed: no secrets, only their ids.", &[
        F("appId", Ty::Str, true, "The app id."),
        F("kind", Ty::Str, true, "terminal, card-system, city or operator."),
        F("cityNos", Ty::Strs, true, "cityNo prefixes."),
        F("targetTypes", Ty::Strs, true, "Target types."),
        F("rateLimit", Ty::Int, true, "Requests per second (0: none)."),
        F("secretIds", Ty::Strs, true, "The ids of its active secrets."),
    ]),
    ("NewSecret", "A new secret: shown this once, never again.", &[
        F("secretId", Ty::Str, true, "Its id (to retire it later)."),
        F("secret", Ty::Str, true, "The secret."),
    ]),
    ("AuditRecord", "One audited decode, transcode or refusal. No ID number: subjectId is a pseudonym.", &[
        F("time", Ty::Int, true, "Unix ms."),
        F("appId", Ty::Str, true, "The caller."),
        F("service", Ty::Str, true, "decode, transcode, callback, transcode-config or admin."),
        F("cityNo", Ty::Str, true, "12 digits, empty when none."),
        F("targetType", Ty::Str, true, "Empty when none."),
        F("sceneCode", Ty::Str, true, "Empty when none."),
        F("terminalId", Ty::Str, true, "The request's X-Akm-Terminal-Id."),
        F("operator", Ty::Str, true, "The request's X-Akm-Operator."),
        F("subjectId", Ty::Str, true, "The resident's pseudonym; empty when none."),
        F("errCode", Ty::Str, true, "What was answered."),
    ]),
    ("StatsRow", "One counter of the statistics (统计考核).", &[
        F("day", Ty::Str, true, "YYYYMMDD, China Standard Time."),
        F("kind", Ty::Str, true, "transcode (by the errCode answered) or trade (province: by tradeState)."),
        F("cityNo", Ty::Str, true, "12 digits."),
        F("targetType", Ty::Str, true, "7 digits."),
        F("sceneCode", Ty::Str, true, "Empty when the request had none (always for trades)."),
        F("outcome", Ty::Str, true, "The errCode (transcode) or the tradeState (trade)."),
        F("count", Ty::Int, true, "How many, counted once each."),
    ]),
];

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Who {
    /// Signed by an app of these kinds.
    Apps(&'static str),
    /// Signed by an operator app.
    Operator,
    /// Unsigned (probes, metrics, this document).
    Open,
}

/// What an operation answers as `data`.
#[derive(Clone, Copy)]
pub(super) enum Data {
    None,
    One(&'static str),
    List(&'static str),
    /// Not the envelope: a probe's JSON, text or HTML.
    Raw(&'static str, &'static str),
}

/// One operation.
pub(super) struct Op {
    pub(super) method: HttpMethod,
    pub(super) path: &'static str,
    pub(super) tag: &'static str,
    pub(super) summary: &'static str,
    pub(super) who: Who,
    pub(super) body: Option<&'static str>,
    pub(super) data: Data,
    /// Error codes beyond the signing ones.
    pub(super) codes: &'static [&'static str],
    /// Query (`in: query`) and path parameters: name, required, what.
    pub(super) query: &'static [F],
    pub(super) province_only: bool,
}

const ADMIN_CODES: &[&str] = &["4001", "4006", "4008", "5003"];

const fn op(
    method: HttpMethod,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    who: Who,
) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        who,
        body: None,
        data: Data::None,
        codes: &[],
        query: &[],
        province_only: false,
    }
}

/// Every operation of both roles.
pub(super) const OPS: &[Op] = &[
    Op { body: Some("DecodeRequest"), data: Data::One("Identity"), codes: &["4001", "4002", "4003", "4004", "4005", "4006", "4008", "5002", "5003", "5004"],
        ..op(HttpMethod::Post, "/api/v1/decode", "services", "识读 decode (7.2): the resident behind a QR code. The city proxies it to the province.", Who::Apps("card-system, city")) },
    Op { body: Some("TranscodeRequest"), data: Data::List("TargetCode"), codes: &["4001", "4002", "4003", "4004", "4005", "4006", "4008", "5001", "5002", "5003", "5004"],
        ..op(HttpMethod::Post, "/api/v1/transcode", "services", "转码 transcode (7.3): the Ankang code into the target card's code(s).", Who::Apps("terminal, city")) },
    Op { body: Some("CallbackRequest"), codes: &["4001", "4006", "4007", "4008", "5003", "5004"],
        ..op(HttpMethod::Post, "/api/v1/callback", "services", "消息回传 callback (7.4): a trade report; 200 only once it is durable.", Who::Apps("card-system, city")) },
    Op { body: Some("ConfigQuery"), data: Data::One("TranscodeConfig"), codes: &["4001", "4005", "4006", "4008", "5002", "5003"],
        ..op(HttpMethod::Post, "/api/v1/transcode-config", "services", "转码配置信息查询 transcode config query (7.5).", Who::Apps("terminal, card-system, city")) },
    Op { body: Some("TranscodeConfig"), data: Data::One("TranscodeConfig"), codes: ADMIN_CODES,
        ..op(HttpMethod::Put, "/admin/v1/transcode-configs", "admin", "Create or update a transcode config.", Who::Operator) },
    Op { data: Data::List("AppView"),
        ..op(HttpMethod::Get, "/admin/v1/apps", "admin", "The registered apps (no secrets).", Who::Operator) },
    Op { body: Some("AppInput"), data: Data::One("NewSecret"), codes: ADMIN_CODES, query: &[F("appId", Ty::Str, true, "The app id.")],
        ..op(HttpMethod::Put, "/admin/v1/apps/{appId}", "admin", "Register an app (data: its first secret, shown once) or update its kind, scopes and rate (data absent).", Who::Operator) },
    Op { codes: &["4001"], query: &[F("appId", Ty::Str, true, "The app id.")],
        ..op(HttpMethod::Delete, "/admin/v1/apps/{appId}", "admin", "Remove an app.", Who::Operator) },
    Op { data: Data::One("NewSecret"), codes: &["4001"], query: &[F("appId", Ty::Str, true, "The app id.")],
        ..op(HttpMethod::Post, "/admin/v1/apps/{appId}/secrets", "admin", "Add a second secret (rotation); both work until one is retired.", Who::Operator) },
    Op { codes: &["4001"], query: &[F("appId", Ty::Str, true, "The app id."), F("secretId", Ty::Str, true, "The secret's id (akm apps list).")],
        ..op(HttpMethod::Delete, "/admin/v1/apps/{appId}/secrets/{secretId}", "admin", "Retire a secret.", Who::Operator) },
    Op { data: Data::List("AuditRecord"), codes: &["4001", "4006"], query: &[
            F("idcardNo", Ty::Str, false, "Only this resident's (matched through the pseudonym; never stored)."),
            F("appId", Ty::Str, false, "Only this app's."),
            F("from", Ty::Int, false, "From this Unix ms."),
            F("to", Ty::Int, false, "Up to this Unix ms."),
            F("limit", Ty::Int, false, "At most this many, 1 to 1000 (default 100)."),
        ],
        ..op(HttpMethod::Get, "/admin/v1/audit", "admin", "The audit trail, newest first.", Who::Operator) },
    Op { data: Data::List("StatsRow"), codes: &["4001"], query: &[
            F("from", Ty::Str, true, "First day, YYYYMMDD (UTC+8)."),
            F("to", Ty::Str, true, "Last day, YYYYMMDD; at most 366 days after from."),
            F("cityNo", Ty::Str, false, "Only cityNos starting with this prefix (34, 3401, a 12-digit code)."),
        ],
        ..op(HttpMethod::Get, "/admin/v1/stats", "admin", "统计考核: per-day counts by cityNo, targetType, sceneCode and outcome.", Who::Operator) },
    Op { body: Some("Resident"), data: Data::One("Resident"), codes: ADMIN_CODES, province_only: true,
        ..op(HttpMethod::Put, "/admin/v1/residents", "admin", "Create or update a resident (province).", Who::Operator) },
    Op { body: Some("FusedCard"), data: Data::One("FusedCard"), codes: ADMIN_CODES, province_only: true,
        query: &[F("idcardNo", Ty::Str, true, "The resident's ID number."), F("targetType", Ty::Str, true, "7 digits.")],
        ..op(HttpMethod::Put, "/admin/v1/residents/{idcardNo}/cards/{targetType}", "admin", "Set a resident's card of a target type (province).", Who::Operator) },
    Op { body: Some("QrRequest"), data: Data::One("Issued"), codes: &["4001", "4003", "4006", "5003"], province_only: true,
        ..op(HttpMethod::Post, "/admin/v1/qrcodes", "admin", "Issue a QR code for a resident (province).", Who::Operator) },
    Op { data: Data::Raw("application/json", "{\"live\": true} while the process runs; 503 when only a restart helps."),
        ..op(HttpMethod::Get, "/livez", "probes", "Liveness.", Who::Open) },
    Op { data: Data::Raw("application/json", "200 when the node can take work, 503 when not (restoring, storage, a task down), with alerts, pending transcodes, outbox depth, partitions."),
        ..op(HttpMethod::Get, "/readyz", "probes", "Readiness.", Who::Open) },
    Op { data: Data::Raw("application/json", "The same as /readyz."),
        ..op(HttpMethod::Get, "/health", "probes", "Readiness (alias of /readyz).", Who::Open) },
    Op { data: Data::Raw("application/openmetrics-text", "The node's Prometheus metrics (README, Runbook)."),
        ..op(HttpMethod::Get, "/metrics", "probes", "Metrics.", Who::Open) },
    Op { data: Data::Raw("application/json", "This document."),
        ..op(HttpMethod::Get, "/openapi.json", "probes", "The OpenAPI document of this node's role.", Who::Open) },
    Op { data: Data::Raw("text/html", "A browsable view of /openapi.json (offline)."),
        ..op(HttpMethod::Get, "/docs", "probes", "API documentation UI.", Who::Open) },
    Op { data: Data::Raw("text/javascript", "swagger-ui-bundle.js or swagger-ui.css, served from the binary."),
        query: &[F("asset", Ty::Str, true, "swagger-ui-bundle.js or swagger-ui.css.")],
        ..op(HttpMethod::Get, "/docs/{asset}", "probes", "The documentation UI's script and style.", Who::Open) },
    Op { data: Data::Raw("text/html", "The dashboard when the session cookie (akm_session) is live, else the login form."),
        ..op(HttpMethod::Get, "/dashboard", "dashboard", "Operator dashboard.", Who::Open) },
    Op { data: Data::Raw("text/html", "303 to /dashboard with a session cookie (HttpOnly, an hour); 401 and the form again when refused (4010)."),
        ..op(HttpMethod::Post, "/dashboard/login", "dashboard", "Sign in: an application/x-www-form-urlencoded form of appId (an operator app) and secret (one of its secrets).", Who::Open) },
    Op { data: Data::Raw("text/html", "303 to /dashboard with a session cookie; 401 when the link is bad, expired or used."),
        query: &[
            F("appId", Ty::Str, true, "The operator app."),
            F("expires", Ty::Int, true, "Unix ms, at most 15 minutes ahead."),
            F("signature", Ty::Str, true, "Hex HMAC-SHA256 under the app's secret of akm-dashboard\\n<appId>\\n<expires>."),
        ],
        ..op(HttpMethod::Get, "/dashboard/link", "dashboard", "Sign in with a one-time link (akm dashboard-link).", Who::Open) },
    Op { data: Data::Raw("text/html", "303 to /dashboard; the session ends."),
        ..op(HttpMethod::Post, "/dashboard/logout", "dashboard", "Sign out.", Who::Open) },
    Op { data: Data::Raw("application/json", "Today's counts by city and errCode, the outbox, the DLQs with their replay commands, consumer lag, readiness; 401 without a session."),
        ..op(HttpMethod::Get, "/dashboard/data", "dashboard", "What the dashboard shows (session cookie).", Who::Open) },
    Op { data: Data::Raw("text/javascript", "dashboard.js or chart.js, served from the binary."),
        query: &[F("asset", Ty::Str, true, "dashboard.js or chart.js.")],
        ..op(HttpMethod::Get, "/dashboard/{asset}", "dashboard", "The dashboard's script and chart library.", Who::Open) },
];

/// The signing headers (SPEC §9), each a security scheme; a signed
/// operation requires all five.
pub(super) const SIGNING: &[(&str, &str, &str)] = &[
    ("appId", signing::H_APP_ID, "Your appId."),
    ("timestamp", signing::H_TIMESTAMP, "Unix milliseconds, within ±300 s of the node's clock."),
    ("nonce", signing::H_NONCE, "16–64 of [A-Za-z0-9_-], fresh for every request."),
    ("signMethod", signing::H_SIGN_METHOD, "HMAC-SHA256 (default) or HMAC-SM3."),
    ("signature", signing::H_SIGNATURE, "Lowercase hex HMAC, keyed with your secret, of the canonical string: method, path, query, appId, timestamp, nonce, hex SHA-256 (SM3) of the body, joined by \\n."),
];
