//! Slow, idle, greedy and abusive clients against the real listener: slow heads
//! and idle connections are closed within the configured time, the connection
//! cap holds while `/health` still answers (within 1 s through a 6,000-connection
//! flood), a wrong-key flood gets 429s (and
//! never refuses a valid key from the same address), and
//! every refusal (404, 405, 408, 414, 415, 429, 431, 503) carries the JSON body.

use palisade_tests::Service;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Read until the server closes the connection; how long that took (panics past `limit`).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (started.elapsed(), seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open past {limit:?}"),
        }
    }
}

#[tokio::test]
async fn a_slow_head_and_an_idle_connection_are_closed_in_time() {
    let s = Service::ingest(&[("HEADER_TIMEOUT_MS", "400")]).await;
    // Slowloris: part of a head, then nothing.
    let mut slow = TcpStream::connect(addr(&s.base)).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let (took, _) = closed_within(&mut slow, Duration::from_secs(3)).await;
    assert!(took >= Duration::from_millis(300), "closed after {took:?}, before the timeout");
    // Kept alive after one answered request, then idle.
    let mut idle = TcpStream::connect(addr(&s.base)).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (took, seen) = closed_within(&mut idle, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"), "the request was answered first");
    assert!(took >= Duration::from_millis(300), "idle connection closed after {took:?}");
}

#[tokio::test]
async fn the_connection_cap_holds_and_health_still_answers() {
    let s = Service::ingest(&[("MAX_CONNECTIONS", "8"), ("HEADER_TIMEOUT_MS", "5000")]).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr(&s.base)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // the server has taken them
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let health = http.get(format!("{}/health", s.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "probes are served past the cap");
    let ingest = |id: &str| {
        http.post(format!("{}/v1/events/ingest", s.base))
            .header("api-key", "test-key")
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"event_id":"{id}","event_type":"message","platform":"web","user_id":"u","content":"hi"}}"#
            ))
            .send()
    };
    let r = ingest("c1").await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "too_many_connections");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = ingest("c2").await.unwrap();
    assert_eq!(r.status(), 202, "served again once the held connections closed");
}

/// A flood of idle connections far past the cap (they re-open as the server closes
/// them) never keeps a health probe out: each probe, on a fresh connection, is
/// answered within 1 s throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_answers_within_a_second_through_a_6000_connection_flood() {
    let s = Service::ingest(&[("MAX_CONNECTIONS", "256"), ("HEADER_TIMEOUT_MS", "5000")]).await;
    let target = addr(&s.base);
    let until = Instant::now() + Duration::from_secs(8);
    let mut flooders = Vec::new();
    for _ in 0..6 {
        let target = target.clone();
        flooders.push(tokio::spawn(async move {
            let (mut held, mut opened) = (Vec::with_capacity(1000), 0usize);
            while Instant::now() < until {
                // Keep 1,000 open: re-open those the server closed.
                held.retain(|c: &TcpStream| {
                    let mut b = [0u8; 1];
                    matches!(c.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                });
                while held.len() < 1000 && Instant::now() < until {
                    match TcpStream::connect(&target).await {
                        Ok(c) => {
                            held.push(c);
                            opened += 1;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            opened
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // the flood is up
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(1)).build().unwrap();
    let (mut probes, mut slowest) = (0, Duration::ZERO);
    while Instant::now() + Duration::from_millis(500) < until {
        let sent = Instant::now();
        let r = http.get(format!("{}/health", s.base)).send().await;
        let took = sent.elapsed();
        assert!(r.as_ref().is_ok_and(|r| r.status() == 200), "probe {probes} after {took:?}: {r:?}");
        (probes, slowest) = (probes + 1, slowest.max(took));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut opened = 0;
    for f in flooders {
        opened += f.await.unwrap();
    }
    assert!(opened >= 6000, "the flood opened {opened} connections");
    assert!(probes >= 20, "{probes} probes, the slowest {slowest:?}");
}

#[tokio::test]
async fn a_wrong_key_flood_gets_429s_and_the_right_key_from_elsewhere_is_served() {
    let s = Service::ingest(&[("AUTH_FAILURES_PER_IP", "5")]).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let r = http.get(format!("{}/v1/admin/plugins", s.base)).header("api-key", format!("guess-{i}")).send().await;
        let r = r.unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            assert!(r.headers().contains_key("retry-after"));
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "rate_limited");
        }
        statuses.push(status);
    }
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    // A burst of 5, then one more per 200 ms at most.
    assert!((5..=12).contains(&refused) && limited >= 25, "{statuses:?}");
    assert_eq!(refused + limited, 40);
}

/// Behind one proxy or NAT every client shares an address: a wrong-key flood from
/// it must not refuse the clients that hold a valid key.
#[tokio::test]
async fn a_wrong_key_flood_never_refuses_a_valid_key_from_the_same_address() {
    let s = Service::ingest(&[("AUTH_FAILURES_PER_IP", "5")]).await;
    let http = reqwest::Client::new();
    let (mut valid, mut limited) = (Vec::new(), 0);
    for i in 0..60 {
        let key = if i % 3 == 0 { "admin-key".to_string() } else { format!("guess-{i}") };
        let r = http.get(format!("{}/v1/admin/plugins", s.base)).header("api-key", &key).send().await.unwrap();
        let status = r.status().as_u16();
        if key == "admin-key" {
            valid.push(status);
        } else {
            limited += usize::from(status == 429);
        }
    }
    assert!(limited >= 20, "the flood is limited ({limited} of 40 got 429)");
    assert!(valid.iter().all(|s| *s == 200), "every valid request served: {valid:?}");
}

#[tokio::test]
async fn every_refusal_carries_the_json_error_body() {
    let s = Service::ingest(&[("BODY_TIMEOUT_MS", "300")]).await;
    let http = reqwest::Client::new();
    let code = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_else(|e| panic!("{status} without a JSON body: {e}"));
        (status, body["error"].as_str().unwrap_or_default().to_string())
    };
    let long_path = format!("{}/v1/{}", s.base, "a".repeat(9000));
    let mut big_headers = reqwest::header::HeaderMap::new();
    for i in 0..80 {
        big_headers
            .insert(reqwest::header::HeaderName::try_from(format!("x-filler-{i}")).unwrap(), "v".parse().unwrap());
    }
    let cases = [
        (http.get(format!("{}/nowhere", s.base)), 404, "not_found"),
        (http.delete(format!("{}/v1/events/ingest", s.base)).header("api-key", "test-key"), 405, "method_not_allowed"),
        (http.get(long_path), 414, "uri_too_long"),
        (http.get(format!("{}/v1/metrics", s.base)).headers(big_headers), 431, "headers_too_large"),
        (
            http.post(format!("{}/v1/events/ingest", s.base))
                .header("api-key", "test-key")
                .header("content-type", "application/vnd.evil+json")
                .body("{}"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (request, status, error) in cases {
        assert_eq!(code(request.send().await.unwrap()).await, (status, error.to_string()));
    }
    // A body that never finishes: 408 within BODY_TIMEOUT_MS.
    let mut stream = TcpStream::connect(addr(&s.base)).await.unwrap();
    let head = "POST /v1/events/ingest HTTP/1.1\r\nHost: x\r\napi-key: test-key\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"event";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"body_timeout\"") {
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed without an answer: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 408"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A webhook far larger than any platform sends is refused before an adapter sees
/// it: no adapter fault, so unsigned floods cannot quarantine an adapter.
#[tokio::test]
async fn an_oversized_webhook_is_refused_before_the_adapter() {
    let s = Service::ingest(&[]).await;
    s.plugins.install("web-adapter");
    s.core.plugins.reload(false);
    let http = reqwest::Client::new();
    for _ in 0..6 {
        let r = http
            .post(format!("{}/v1/platforms/web/webhook", s.base))
            .header("content-type", "application/json")
            .body(vec![b' '; 2 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "body_too_large");
    }
    let plugins: Value = http
        .get(format!("{}/v1/admin/plugins", s.base))
        .header("api-key", "admin-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let web = plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "web-adapter").unwrap();
    assert_eq!(web["state"], "active", "{web}");
}
