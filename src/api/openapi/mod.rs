//! The API description: an OpenAPI 3.1 document (utoipa's model) of every
//! route a role serves, with the spec's field names and aliases, the
//! errCodes each operation may answer and the signing headers; served
//! unsigned at `GET /openapi.json`, with a browsable UI at `GET /docs`
//! (swagger-ui, vendored in `assets/swagger-ui`: government networks are
//! offline). The tables are in `catalog.rs`; `tests/it/openapi.rs`
//! checks them against the router.

use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ArrayBuilder, ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, ObjectBuilder,
    OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required, ResponseBuilder, Schema, Type,
};

use crate::protocol::{self, ErrCode};

mod catalog;

use catalog::{Data, Op, Ty, Who, F, OPS, SCHEMAS, SIGNING};

fn field_schema(ty: Ty, doc: &str) -> RefOr<Schema> {
    let base = |t: Type| ObjectBuilder::new().schema_type(t).description(Some(doc));
    match ty {
        Ty::Str => base(Type::String).into(),
        Ty::Int => base(Type::Integer).into(),
        Ty::Bool => base(Type::Boolean).into(),
        Ty::Strs => ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(doc))
            .into(),
    }
}

fn object(doc: &str, fields: &[F]) -> Schema {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(doc));
    for F(name, ty, required, what) in fields {
        o = o.property(*name, field_schema(*ty, what));
        if *required {
            o = o.required(*name);
        }
    }
    o.into()
}

/// The envelope every service and admin answer has, with `data` as given.
fn envelope(data: Option<RefOr<Schema>>) -> Schema {
    let codes: Vec<String> = protocol::ALL.iter().map(|c| c.code().to_string()).collect();
    let table: Vec<String> = protocol::ALL
        .iter()
        .map(|c| format!("{} ({}): {}", c.code(), c.status(), c.default_text()))
        .collect();
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The spec's envelope. errMsg is Chinese and names the field at fault.",
        ))
        .property(
            "flag",
            field_schema(Ty::Str, "The HTTP status, as a string."),
        )
        .required("flag")
        .property(
            "errCode",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes))
                .description(Some(format!("200, or the error: {}", table.join("; ")))),
        )
        .required("errCode")
        .property(
            "errMsg",
            field_schema(Ty::Str, "What happened, in Chinese."),
        )
        .required("errMsg");
    if let Some(d) = data {
        o = o.property("data", d);
    }
    o.into()
}

fn json_body(schema: impl Into<RefOr<Schema>>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// The error responses of `codes`, one per HTTP status.
fn error_responses(mut ops: OperationBuilder, codes: &[&str]) -> OperationBuilder {
    let mut by_status: std::collections::BTreeMap<u16, Vec<String>> = Default::default();
    for c in codes.iter().filter_map(|c| ErrCode::parse(c)) {
        by_status
            .entry(c.status())
            .or_default()
            .push(format!("{} {}", c.code(), c.default_text()));
    }
    for (status, list) in by_status {
        ops = ops.response(
            status.to_string(),
            ResponseBuilder::new().description(list.join("; ")).content(
                "application/json",
                json_body(Ref::from_schema_name("Envelope")),
            ),
        );
    }
    ops
}

/// `post_api_v1_decode`: the method and the path's words.
fn operation_id(o: &Op) -> String {
    let method = match o.method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Delete => "delete",
        _ => "other",
    };
    let words: Vec<String> = o
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{method}_{}", words.join("_"))
}

fn operation(o: &Op) -> OperationBuilder {
    let mut b = OperationBuilder::new()
        .tag(o.tag)
        .summary(Some(o.summary))
        .operation_id(Some(operation_id(o)));
    if o.province_only {
        b = b.description(Some("Province only: the city answers 404."));
    }
    for F(name, ty, required, what) in o.query {
        let place = if o.path.contains(&format!("{{{name}}}")) {
            ParameterIn::Path
        } else {
            ParameterIn::Query
        };
        b = b.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(place)
                .required(if *required {
                    Required::True
                } else {
                    Required::False
                })
                .description(Some(*what))
                .schema(Some(field_schema(*ty, what))),
        );
    }
    if let Some(body) = o.body {
        b = b.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json_body(Ref::from_schema_name(body)))
                .build(),
        ));
    }
    let ok = match o.data {
        Data::Raw(kind, what) => ResponseBuilder::new()
            .description(what)
            .content(kind, ContentBuilder::new().build()),
        data => {
            let data: Option<RefOr<Schema>> = match data {
                Data::One(s) => Some(Ref::from_schema_name(s).into()),
                Data::List(s) => Some(ArrayBuilder::new().items(Ref::from_schema_name(s)).into()),
                _ => None,
            };
            ResponseBuilder::new()
                .description("Success (errCode 200).")
                .content("application/json", json_body(envelope(data)))
        }
    };
    b = b.response("200", ok);
    if o.who == Who::Open {
        return b;
    }
    let kinds = match o.who {
        Who::Apps(k) => k,
        _ => "operator",
    };
    b = b.description(Some(format!(
        "Signed (SPEC §9) by an app of kind: {kinds}.{}",
        if o.province_only {
            " Province only: the city answers 404."
        } else {
            ""
        }
    )));
    let mut req = SecurityRequirement::default();
    for (name, _, _) in SIGNING {
        req = req.add(*name, Vec::<String>::new());
    }
    let mut codes: Vec<&str> = o.codes.to_vec();
    codes.extend(["4010", "4011", "4013", "4029"]);
    error_responses(b.security(req), &codes)
}

/// The document of a role (`province` serves everything; a city all but
/// the province's own admin).
pub fn document(province: bool) -> OpenApi {
    let mut paths = Paths::new();
    for o in OPS.iter().filter(|o| province || !o.province_only) {
        paths.add_path_operation(o.path, vec![o.method.clone()], operation(o));
    }
    let mut components = ComponentsBuilder::new().schema("Envelope", envelope(None));
    for (name, doc, fields) in SCHEMAS {
        components = components.schema(*name, object(doc, fields));
    }
    for (name, header, doc) in SIGNING {
        components = components.security_scheme(
            *name,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(*header, *doc))),
        );
    }
    let role = if province { "province" } else { "city" };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(format!("安康码融合转码平台 ({role})"))
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The Ankang code fusion platform's services (SPEC §7) and admin API. Every request but the probes, /metrics, /openapi.json and /docs is signed (SPEC §9): five X-Akm-* headers. Bodies are JSON (at most 64 KiB); answers are the spec's envelope.",
                )),
        )
        .paths(paths)
        .components(Some(components.build()))
        .tags(Some(
            [("services", "The four services of SPEC §7."), ("admin", "Operator apps only."), ("probes", "Unsigned."), ("dashboard", "Operators, by session cookie (not signed per request).")]
                .map(|(n, d)| TagBuilder::new().name(n).description(Some(d)).build()),
        ))
        .build()
}

/// `GET /docs`: swagger-ui over `/openapi.json`, from the binary.
pub const DOCS_HTML: &str = r##"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>安康码融合转码平台 API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", deepLinking: true});</script>
</body></html>"##;

/// The vendored swagger-ui assets, by name.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    match name {
        "swagger-ui-bundle.js" => Some((
            "text/javascript; charset=utf-8",
            include_bytes!("../../../assets/swagger-ui/swagger-ui-bundle.js"),
        )),
        "swagger-ui.css" => Some((
            "text/css; charset=utf-8",
            include_bytes!("../../../assets/swagger-ui/swagger-ui.css"),
        )),
        _ => None,
    }
}
