//! What an operator's restarts do to screening, on `palisade serve screen`
//! processes of the built binary over one vector folder and the real Redis:
//! screen, stop (SIGTERM), start again and screen the same event ids through the
//! sync route and through the stream (a client retry, a redelivery); then the
//! same after a SIGKILL mid-write with a torn tail, and over a corrupt store
//! file. Every answer is a prediction, nothing panics, `/ready` stays `ready`,
//! and the past events are found again.

use palisade_tests::{PluginDir, ServeProcess, model_files, shipped, unique_prefix, wait_until};
use redis::Commands;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// Borderline and plain messages: some fall in the cascade's band and are
/// embedded, some are not (the first is plain, so the first batch may embed nothing).
const MESSAGES: [&str; 6] = [
    "thanks, see you at the meeting tomorrow",
    "you people are such idiots honestly",
    "click here to claim your free prize money now",
    "i know which bus you take home, watch yourself",
    "that match last night was brutal, we crushed them",
    "shut up, nobody asked for your stupid opinion",
];

struct Setup {
    plugins: PluginDir,
    vectors: tempfile::TempDir,
    prefix: String,
}

impl Setup {
    fn new() -> Self {
        let plugins = PluginDir::new();
        for p in shipped() {
            plugins.install(&p);
        }
        Setup { plugins, vectors: tempfile::tempdir().unwrap(), prefix: unique_prefix() }
    }

    async fn start(&self) -> ServeProcess {
        let (model, lib) = model_files();
        let (model, lib, dir) = (model.display().to_string(), lib.display().to_string(), self.dir());
        let env = [
            ("SCREENING_MODEL", model.as_str()),
            ("ORT_DYLIB_PATH", lib.as_str()),
            ("VECTOR_DIR", dir.as_str()),
            ("REDIS_KEY_PREFIX", self.prefix.as_str()),
            ("CONSUMER_NAME", "restarts"),
            // A wide band: most messages are embedded, a plain one (the first) is not.
            ("CASCADE_BAND", "0.03,0.97"),
            ("LOG_FORMAT", "text"),
        ];
        ServeProcess::start(env!("CARGO_BIN_EXE_palisade"), "screen", &self.plugins, &env).await
    }

    fn dir(&self) -> String {
        self.vectors.path().display().to_string()
    }

    fn segments(&self) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(self.vectors.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name().unwrap().to_string_lossy().starts_with("events.")
                    && p.extension().is_some_and(|x| x == "vec")
            })
            .collect();
        files.sort();
        files
    }
}

fn event(id: &str, content: &str) -> Value {
    json!({"event_id": id, "event_type": "message", "platform": "web", "user_id": format!("u-{id}"), "content": content})
}

/// Screen every message through the sync route; each answer must be a prediction.
async fn screen_all(s: &ServeProcess) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for (i, content) in MESSAGES.iter().enumerate() {
        let r = http
            .post(format!("{}/v1/risk/screen", s.base))
            .header("api-key", "test-key")
            .json(&event(&format!("r-{i}"), content))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "{body}\n{}", s.log_text());
        assert!(body["category"].is_string(), "not a prediction: {body}\n{}", s.log_text());
        out.push(body);
    }
    out
}

/// The ids of the events the embedding stage saw (they join the past events).
fn embedded(answers: &[Value]) -> Vec<String> {
    answers
        .iter()
        .filter(|a| a["model_id"].is_string())
        .map(|a| a["event"]["event_id"].as_str().unwrap().into())
        .collect()
}

/// Each embedded event, screened again, finds its own earlier screening.
fn finds_itself(answers: &[Value], ids: &[String]) {
    for a in answers.iter().filter(|a| ids.contains(&a["event"]["event_id"].as_str().unwrap().to_string())) {
        let id = &a["event"]["event_id"];
        let past = a["similar_events"].as_array().unwrap();
        assert!(past.iter().any(|n| n["id"] == *id), "{id} not among its past events: {a}");
    }
}

async fn assert_ready(s: &ServeProcess) {
    let ready: Value = reqwest::get(format!("{}/ready", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}\n{}", s.log_text());
}

fn no_panics(s: &ServeProcess) {
    let log = s.log_text();
    assert!(!log.contains("panicked") && !log.contains("PoisonError"), "{log}");
}

/// Put the same events on the stream again (a redelivery) and wait until each is routed.
fn redeliver(prefix: &str) {
    let keys = palisade_streams::Keys::layout(prefix, 1, false);
    let shard = &keys.shards[0];
    let mut conn = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let routed = |conn: &mut redis::Connection| -> usize {
        conn.xlen::<_, usize>(&shard.reasoning).unwrap() + conn.xlen::<_, usize>(&shard.low_risk).unwrap()
    };
    let before = routed(&mut conn);
    for (i, content) in MESSAGES.iter().enumerate() {
        let mut e = palisade_core::Event::sample(content);
        e.event_id = format!("r-{i}");
        let _: String = conn.xadd(&shard.raw, "*", &[("event", serde_json::to_string(&e).unwrap())]).unwrap();
    }
    wait_until(
        Duration::from_secs(30),
        || routed(&mut conn) == before + MESSAGES.len(),
        "the redelivered events to be routed",
    );
    let dead: usize = conn.xlen(&shard.dead_letter).unwrap();
    assert_eq!(dead, 0, "nothing dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screening_survives_restarts_torn_writes_and_a_corrupt_store() {
    let setup = Setup::new();

    // 1. Screen, then a graceful stop.
    let mut first = setup.start().await;
    let answers = screen_all(&first).await;
    let ids = embedded(&answers);
    assert!(!ids.is_empty(), "some messages reach the embedding stage: {answers:?}");
    assert!(first.terminate().success(), "{}", first.log_text());
    no_panics(&first);

    // 2. The same ids again after the restart, through the route and the stream.
    let mut second = setup.start().await;
    let again = screen_all(&second).await;
    finds_itself(&again, &ids);
    redeliver(&setup.prefix);
    screen_all(&second).await;
    assert_ready(&second).await;
    no_panics(&second);

    // 3. SIGKILL while screening, and a record cut off halfway at the end of the file.
    let load = {
        let base = second.base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..200 {
                let body = event(&format!("k-{i}"), &format!("you are pathetic number {i}, go away"));
                let _ =
                    http.post(format!("{base}/v1/risk/screen")).header("api-key", "test-key").json(&body).send().await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.kill();
    let _ = load.await;
    let newest = setup.segments().pop().expect("a past-events segment on disk");
    let whole = std::fs::metadata(&newest).unwrap().len();
    append(&newest, &[3, 0, 0, 0, b'r', b'-', b'9', 4, 0, 0, 0, b'T', b'O']);
    let third = setup.start().await;
    assert!(third.log_text().contains("truncating"), "the torn tail is reported: {}", third.log_text());
    assert!(std::fs::metadata(&newest).unwrap().len() <= whole, "and cut away");
    finds_itself(&screen_all(&third).await, &ids);
    assert_ready(&third).await;
    no_panics(&third);
    drop(third);

    // 4. A store file that cannot be read: set aside, and screening goes on without it.
    for segment in setup.segments() {
        let mut bytes = b"PLSV2\0".to_vec();
        bytes.extend_from_slice(&384u32.to_le_bytes());
        bytes.extend_from_slice(&[2, 0, 0, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 384 * 4]);
        std::fs::write(segment, bytes).unwrap();
    }
    let fourth = setup.start().await;
    assert!(fourth.log_text().contains("moved it aside"), "{}", fourth.log_text());
    let fresh = screen_all(&fourth).await;
    assert!(
        fresh.iter().all(|a| a["similar_events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| !n["id"].as_str().unwrap().starts_with("k-")))
    );
    finds_itself(&screen_all(&fourth).await, &embedded(&fresh));
    assert_ready(&fourth).await;
    no_panics(&fourth);
    let aside = std::fs::read_dir(setup.vectors.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".unreadable-"))
        .count();
    assert!(aside >= 1, "the unreadable file is kept for a person to look at");
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}
