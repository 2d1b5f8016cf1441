//! Backtests and the install gate with real built plugins: a candidate rule plugin
//! against the installed one over a labelled fixture (F1 of both, the rows that
//! changed), the gate refusing a worse version and passing a better one, and a
//! backtest over stream history that leaves the stream, its group and its
//! pending list exactly as they were (real Redis).

use palisade::screening::backtest::{self, Side, StreamRange};
use palisade_detect::predict::DecisionPolicy;
use palisade_detect::vectors::bank::Labelled;
use palisade_tests::{PluginDir, manifest, set_key, unique_prefix, wasm};
use redis::Commands;

fn rows() -> Vec<Labelled> {
    let row = |id: &str, text: &str, label: &str| Labelled {
        id: id.into(),
        text: text.into(),
        label: label.into(),
        source: String::new(),
    };
    vec![
        row("v1", "I will kill you", "VIOLENCE"),
        row("v2", "i will kill you tonight", "VIOLENCE"),
        row("v3", "I'm going to kill you and your family", "VIOLENCE"),
        row("v4", "I will murder you", "VIOLENCE"),
        row("l1", "see you at lunch tomorrow", "LOW_RISK"),
        row("l2", "great game last night, well played", "LOW_RISK"),
        row("l3", "happy birthday, have a lovely day", "LOW_RISK"),
        row("l4", "can you send me the notes from class", "LOW_RISK"),
    ]
}

/// The installed plugins (threats and the validator) as screening would use them.
fn active(dir: &PluginDir) -> Side {
    Side { plugins: dir.open().0, classifier: None, policy: DecisionPolicy::default() }
}

fn candidate(dir: &PluginDir, edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, Side) {
    let (tmp, plugins, _) =
        backtest::candidate_plugins(&dir.path(), &wasm("threats"), &edit(manifest("threats"))).unwrap();
    (tmp, Side { plugins, classifier: None, policy: DecisionPolicy::default() })
}

#[test]
fn a_labelled_backtest_reports_both_f1s_and_the_rows_that_changed_and_the_gate_decides() {
    let dir = PluginDir::new();
    dir.install("threats");
    let rows = rows();

    // A worse candidate: the same rule at a tenth of its weight no longer reaches the bar.
    let (_tmp, worse) = candidate(&dir, |m| set_key(&m, "weight", "0.1"));
    let report = backtest::labelled(&active(&dir), &worse, &rows, 10, &backtest::Quiet);
    let violence = |s: &palisade_detect::scores::Scores| s.per_category["VIOLENCE"].f1;
    assert!(violence(&report.active) > 0.8, "the installed rule finds the threats: {}", report.render());
    assert!(violence(&report.candidate) < violence(&report.active), "{}", report.render());
    assert!(report.changed_total > 0 && report.changed.iter().all(|r| r.label == "VIOLENCE"), "{}", report.render());
    assert!(report.changed.iter().all(|r| r.active.category == "VIOLENCE" && r.candidate.category == "LOW_RISK"));
    let drops = backtest::gate(&report, 0.01);
    assert_eq!(drops[0].category, "VIOLENCE", "{drops:?}");
    assert!(drops[0].to_string().starts_with("F1 of VIOLENCE drops"), "{}", drops[0]);
    assert!(backtest::gate(&report, 1.0).is_empty(), "a loose enough gate lets it in");

    // Nothing changed in the installed directory: the candidate lived in a copy.
    assert_eq!(dir.open().0.get("threats").unwrap().current().unwrap().manifest.weight, 1.0);

    // The same version again changes nothing and passes any gate.
    let (_tmp, same) = candidate(&dir, |m| m);
    let report = backtest::labelled(&active(&dir), &same, &rows, 10, &backtest::Quiet);
    assert_eq!(report.changed_total, 0);
    assert!(backtest::gate(&report, 0.0).is_empty());
}

#[test]
fn a_better_candidate_passes_the_gate() {
    // Installed: the rule at a tenth of its weight (misses threats); candidate: full weight.
    let dir = PluginDir::new();
    dir.install_with("threats", |m| set_key(&m, "weight", "0.1"));
    let (_tmp, better) = candidate(&dir, |m| m);
    let report = backtest::labelled(&active(&dir), &better, &rows(), 10, &backtest::Quiet);
    assert!(report.candidate.weighted_f1 > report.active.weighted_f1, "{}", report.render());
    assert!(backtest::gate(&report, 0.0).is_empty(), "{}", report.render());
}

#[tokio::test]
async fn a_stream_backtest_reads_history_and_leaves_stream_group_and_pending_untouched() {
    let dir = PluginDir::new();
    dir.install("threats");
    let key = format!("{}events:raw", unique_prefix());
    let mut conn = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap();
    let texts = ["I will kill you", "see you at lunch", "i will kill you tonight", "happy birthday"];
    for (i, text) in texts.iter().enumerate() {
        let event = serde_json::json!({"event_id": format!("s{i}"), "event_type": "message", "platform": "web",
            "user_id": "u", "content": text});
        let _: String = conn.xadd(&key, "*", &[("event_id", format!("s{i}")), ("event", event.to_string())]).unwrap();
    }
    let _: String = conn.xadd(&key, "*", &[("event_id", "junk"), ("event", "not json")]).unwrap();
    // A consumer group with one delivered, unacknowledged entry.
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&key).arg("screening").arg("0").query(&mut conn).unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("screening")
        .arg("c1")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query(&mut conn)
        .unwrap();
    let look = |conn: &mut redis::Connection| -> (redis::Value, redis::Value, redis::Value) {
        (
            redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query(conn).unwrap(),
            redis::cmd("XINFO").arg("GROUPS").arg(&key).query(conn).unwrap(),
            // The summary form: count, ids and consumers (the extended form carries idle times).
            redis::cmd("XPENDING").arg(&key).arg("screening").query(conn).unwrap(),
        )
    };
    let before = look(&mut conn);

    let (_tmp, worse) = candidate(&dir, |m| set_key(&m, "weight", "0.1"));
    let range = StreamRange { streams: vec![key.clone()], from: "-".into(), to: "+".into(), limit: None };
    let mut aconn =
        redis::Client::open("redis://127.0.0.1:6379").unwrap().get_multiplexed_async_connection().await.unwrap();
    let report = backtest::stream(&mut aconn, &range, &active(&dir), &worse, 10, &backtest::Quiet).await.unwrap();
    assert_eq!((report.compared, report.unparseable), (4, 1), "{}", report.render("range"));
    assert_eq!(report.flips.get("VIOLENCE→LOW_RISK"), Some(&2), "{}", report.render("range"));
    assert_eq!(report.agreed, 2);
    assert_eq!(report.sample.len(), 2);
    assert!(report.sample.iter().all(|f| f.active.risk > f.candidate.risk));
    assert_eq!(report.risk_delta.values().sum::<u64>(), 4);

    // A limit caps how many entries are read.
    let capped = StreamRange { limit: Some(2), ..range };
    let report = backtest::stream(&mut aconn, &capped, &active(&dir), &worse, 10, &backtest::Quiet).await.unwrap();
    assert_eq!(report.compared, 2);

    assert_eq!(look(&mut conn), before, "the stream, its group and its pending list are untouched");
    let _: () = conn.del(&key).unwrap();
}
