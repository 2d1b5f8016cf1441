//! Distributed traces across processes: the real `palisade` binary runs as two
//! processes (`serve ingest`, `serve screen`) exporting OTLP/HTTP to a local
//! receiver that decodes the protobuf spans. One event ingested with a client's
//! `traceparent` must yield one trace: the client's span → ingest's request span
//! (→ its produce span) → screening's span for that event, linked to the batch it
//! was screened in, whose stage spans are its children. Also: `palisade health`
//! (the image's HEALTHCHECK) and a graceful exit on SIGTERM. Needs `scripts/setup`
//! (var/plugins, the model, the classifier) and Redis on 127.0.0.1:6379.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A span as received, with the service that sent it.
#[derive(Debug, Clone)]
struct Seen {
    service: String,
    span: Span,
}

impl Seen {
    fn attr(&self, key: &str) -> Option<String> {
        let value = self.span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
        Some(match value {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
    }
}

/// An OTLP/HTTP receiver on a free port: every span it was sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            AnyValue::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                        store.lock().unwrap().push(Seen { service: service.clone(), span });
                    }
                }
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// A `palisade serve` process, stopped with SIGTERM when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(which: &str, env: &[(&str, String)], log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
        cmd.args(["serve", which]).stdout(Stdio::null()).stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Process { child: cmd.spawn().expect("palisade binary"), log }
    }

    /// SIGTERM, then the exit status (graceful shutdown flushes the spans).
    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit 30 s after SIGTERM: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `palisade health` (the image's HEALTHCHECK) against these ports.
fn health(ingest_port: u16, screen_port: u16) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("health")
        .env("INGEST_ADDR", format!("0.0.0.0:{ingest_port}"))
        .env("SCREENING_ADDR", format!("0.0.0.0:{screen_port}"))
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_healthy(base: &str, process: &Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/ready")).await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(Instant::now() < deadline, "{base} not ready after 60 s: {}", process.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_ingest_request_to_the_screening_route() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let var = root.join("var");
    assert!(var.join("classifier/classifier.json").is_file(), "run scripts/setup first");
    let (otlp, seen) = receiver().await;
    let (ingest_port, screen_port) = (free_port(), free_port());
    let prefix = format!("test:traces:{}:", std::process::id());
    let logs = tempfile::tempdir().unwrap();
    let env = |addr_key: &'static str, port: u16| {
        vec![
            (addr_key, format!("127.0.0.1:{port}")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("PLUGIN_DIR", var.join("plugins").display().to_string()),
            ("PLUGIN_WATCH", "false".into()),
            ("SCREENING_MODEL", var.join("models/all-MiniLM-L6-v2").display().to_string()),
            ("ORT_DYLIB_PATH", var.join("onnxruntime/libonnxruntime.so.1.32.0").display().to_string()),
            ("VECTOR_DIR", var.join("vectors").display().to_string()),
            ("CLASSIFIER_DIR", var.join("classifier").display().to_string()),
            ("CLASSIFIER_WATCH", "false".into()),
            // Every event reaches the embedding stage, so its spans show too.
            ("CASCADE", "off".into()),
            ("API_KEYS", "test-key".into()),
            // The other service's port must not collide with a developer's running one.
            (
                if addr_key == "INGEST_ADDR" { "SCREENING_ADDR" } else { "INGEST_ADDR" },
                format!("127.0.0.1:{}", free_port()),
            ),
        ]
    };
    let (up, said) = health(ingest_port, screen_port);
    assert!(!up && said.contains("no service answers"), "{said}");
    let mut ingest = Process::start("ingest", &env("INGEST_ADDR", ingest_port), logs.path().join("ingest.log"));
    let mut screen = Process::start("screen", &env("SCREENING_ADDR", screen_port), logs.path().join("screen.log"));
    let ingest_base = format!("http://127.0.0.1:{ingest_port}");
    wait_healthy(&ingest_base, &ingest).await;
    wait_healthy(&format!("http://127.0.0.1:{screen_port}"), &screen).await;
    let (up, said) = health(ingest_port, free_port());
    assert!(up && said.contains(r#""service":"ingest""#), "the HEALTHCHECK passes on ingest alone: {said}");

    // The client's own trace: ingest's request span must be its child.
    let (trace_id, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let event_id = format!("trace-{}", std::process::id());
    let response = reqwest::Client::new()
        .post(format!("{ingest_base}/v1/events/ingest"))
        .header("api-key", "test-key")
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&serde_json::json!({
            "event_id": event_id, "event_type": "message", "platform": "web", "user_id": "u1",
            "content": "Watch your back tomorrow, you won't make it home alive",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202, "{}", response.text().await.unwrap());

    // Screened and routed: the screening process exports its event span.
    let deadline = Instant::now() + Duration::from_secs(60);
    let in_trace = |name: &str| -> Vec<Seen> {
        let spans = seen.lock().unwrap();
        spans.iter().filter(|s| hex(&s.span.trace_id) == trace_id && s.span.name == name).cloned().collect()
    };
    while in_trace("screen.event").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no screening span in the client's trace after 60 s\ningest: {}\nscreen: {}",
            ingest.log_text(),
            screen.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Graceful stop on SIGTERM (what a container's stop sends), with the rest flushed.
    assert!(ingest.stop().success(), "ingest exit: {}", ingest.log_text());
    assert!(screen.stop().success(), "screen exit: {}", screen.log_text());

    let request = in_trace("POST /v1/events/ingest");
    assert_eq!(request.len(), 1, "{request:?}");
    let request = &request[0];
    assert_eq!(request.service, "palisade-ingest");
    assert_eq!(hex(&request.span.parent_span_id), client_span, "ingest's span is the client's child");
    assert_eq!(request.attr("http.response.status_code").as_deref(), Some("202"));
    let produce = in_trace("produce");
    assert_eq!(produce.len(), 1);
    assert_eq!(produce[0].span.parent_span_id, request.span.span_id, "the produce round trip is in the request");

    let event = &in_trace("screen.event")[0];
    assert_eq!(event.service, "palisade-screening");
    assert_eq!(event.span.parent_span_id, request.span.span_id, "screening's event span is ingest's child");
    assert_eq!(event.attr("event_id").as_deref(), Some(event_id.as_str()));
    assert_eq!(event.attr("destination").as_deref(), Some("reasoning_queue"), "{event:?}");

    // The batch it was screened in: linked from the event span, with the stages as children.
    let link = event.span.links.first().expect("a link to the batch");
    let spans = seen.lock().unwrap().clone();
    let batch = spans.iter().find(|s| s.span.span_id == link.span_id).expect("the batch span was exported");
    assert_eq!(batch.span.name, "screen.batch");
    let children: Vec<&str> = spans
        .iter()
        .filter(|s| s.span.trace_id == batch.span.trace_id && s.span.parent_span_id == batch.span.span_id)
        .map(|s| s.span.name.as_str())
        .collect();
    for stage in ["rules", "classifier", "embed", "knn", "route"] {
        assert!(children.contains(&stage), "{stage} missing under the batch: {children:?}");
    }
}
