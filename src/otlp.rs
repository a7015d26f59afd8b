//! OTLP export of the platform's spans (cargo feature `otlp`): with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set (the collector's base URL; the
//! standard `OTEL_*` variables tune the batch and the service name), the
//! `request` and `record` spans go to an OpenTelemetry collector over
//! OTLP/HTTP (protobuf) as children of the trace they carry (`trace.rs`),
//! so a trade's spans at the city, the province and the workers form one
//! trace in Jaeger, Tempo or SkyWalking.

use std::sync::OnceLock;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The standard variable naming the collector.
pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The exporting layer, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub fn layer<S>() -> anyhow::Result<Option<Box<dyn Layer<S> + Send + Sync>>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let Ok(endpoint) = std::env::var(ENDPOINT) else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("akm")
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("akm");
    let _ = PROVIDER.set(provider);
    Ok(Some(
        tracing_opentelemetry::layer().with_tracer(tracer).boxed(),
    ))
}

/// Export what is buffered and stop (at exit).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.shutdown() {
            eprintln!("OTLP export did not finish: {e}");
        }
    }
}

/// Make `span` a child of the remote span `parent_id` of `trace_id`.
pub fn link(span: &tracing::Span, trace_id: &str, parent_id: &str) {
    if let (Ok(t), Ok(p)) = (TraceId::from_hex(trace_id), SpanId::from_hex(parent_id)) {
        let remote = SpanContext::new(t, p, TraceFlags::SAMPLED, true, TraceState::default());
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}
