//! Distributed traces: OpenTelemetry spans exported over OTLP/HTTP (protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and off otherwise — then [`span!`](crate::span)
//! makes no span at all, so tracing costs nothing. Owns the tracer provider, the
//! HTTP client the exporter sends with, and the W3C `traceparent` text that joins
//! a span to a trace begun elsewhere (an ingest request, inside a stream entry).
//! It decides nothing about what a span covers: the services open their own.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpError, Request, Response};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ON: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (set once, at start).
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// An info-level span when traces are on, else `Span::none()` (nothing recorded,
/// nothing formatted). Same arguments as `tracing::info_span!`.
#[macro_export]
macro_rules! span {
    ($($arg:tt)*) => {
        if $crate::telemetry::traces::on() { tracing::info_span!($($arg)*) } else { tracing::Span::none() }
    };
}

/// The tracer provider for `service` exporting to `endpoint` (`…/v1/traces` is
/// appended), batched on the SDK's own thread. Call once; [`shutdown`] flushes.
pub(super) fn start(endpoint: &str, service: &str) -> anyhow::Result<opentelemetry_sdk::trace::Tracer> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_http_client(Sender::new()?)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_string()).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("palisade");
    let _ = PROVIDER.set(provider);
    ON.store(true, Ordering::Relaxed);
    Ok(tracer)
}

/// Export what is still queued (at exit).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "flushing traces at exit failed");
    }
}

/// The W3C `traceparent` of `span`, when it is being traced.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !on() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Make `span` a child of the span a `traceparent` names (a malformed one is ignored).
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Link `span` to `to` (a span it belongs with but is not the child of: an
/// event's screening span and the batch it was screened in).
pub fn link(span: &tracing::Span, to: &tracing::Span) {
    let target = to.context().span().span_context().clone();
    if target.is_valid() {
        span.add_link(target);
    }
}

/// The exporter's HTTP client: the reqwest the services already use, driven by a
/// one-thread runtime of its own (the SDK exports from a plain thread).
#[derive(Debug)]
struct Sender {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Sender {
    fn new() -> anyhow::Result<Self> {
        Ok(Sender {
            client: reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-export")
                .enable_all()
                .build()?,
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Sender {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let (status, headers) = (response.status(), response.headers().clone());
                Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
            })
            .await??;
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
