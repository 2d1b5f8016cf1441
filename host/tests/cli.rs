//! The `palisade` command line: checking a plugin file, listing a directory, and
//! `serve screen` refusing to start on a bad model folder. Uses the components and
//! the model `scripts/setup` put under plugins/target and var/.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn palisade(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade")).args(args).current_dir(root()).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn plugins_check_reports_world_exports_compile_time_and_a_verdict() {
    let wasm = root().join("plugins/target/wasm32-wasip2/release/threats.wasm");
    assert!(wasm.is_file(), "run scripts/setup first (it builds the plugins)");
    let (ok, out) = palisade(&[
        "plugins",
        "check",
        wasm.to_str().unwrap(),
        "--manifest",
        "plugins/heuristics/threats/plugin.toml",
        "--text",
        "I will kill you",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("world:    heuristic"), "{out}");
    assert!(out.contains("exports:  score"), "{out}");
    assert!(out.contains("compile:"), "{out}");
    assert!(out.contains("Category::Violence"), "{out}");

    let (ok, out) =
        palisade(&["plugins", "check", wasm.to_str().unwrap(), "--manifest", "plugins/validators/policy/plugin.toml"]);
    assert!(!ok);
    assert!(out.contains("manifest declares kind `validator`"), "{out}");
}

#[test]
fn plugins_list_shows_each_plugin_and_a_missing_dir_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = root().join("plugins/target/wasm32-wasip2/release/caps_shouting.wasm");
    let (ok, out) = palisade(&[
        "plugins",
        "install",
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        "plugins/heuristics/caps-shouting/plugin.toml",
        wasm.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = palisade(&["plugins", "list", "--dir", dir.path().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("caps-shouting") && l.contains("heuristic") && l.contains("active")),
        "{out}"
    );
    let (ok, out) = palisade(&["plugins", "list", "--dir", "/nonexistent/plugins"]);
    assert!(!ok);
    assert!(out.contains("does not exist"), "{out}");
}

/// `palisade serve screen` with `SCREENING_MODEL=model`: it must exit (not serve)
/// within 30 s; its exit status and output.
fn serve_screen_with_model(model: &Path) -> (bool, String) {
    let plugins = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["serve", "screen"])
        .current_dir(root())
        .env("SCREENING_MODEL", model)
        .env("PLUGIN_DIR", plugins.path())
        .env("SCREENING_ADDR", "127.0.0.1:0")
        .env("PLUGIN_WATCH", "false")
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("serve screen started with SCREENING_MODEL={}", model.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_missing_or_wrong_model_folder_stops_screening_start_up_with_a_clear_message() {
    let (ok, out) = serve_screen_with_model(Path::new("/nonexistent/model"));
    assert!(!ok);
    assert!(out.contains("model folder /nonexistent/model: model.onnx is missing"), "{out}");
    assert!(out.contains("SCREENING_MODEL=none"), "says how to run without a model: {out}");

    let wrong = tempfile::tempdir().unwrap();
    std::fs::write(wrong.path().join("model.onnx"), b"not an onnx model").unwrap();
    std::fs::copy(root().join("var/models/all-MiniLM-L6-v2/tokenizer.json"), wrong.path().join("tokenizer.json"))
        .expect("run scripts/setup first (it fetches the model)");
    let (ok, out) = serve_screen_with_model(wrong.path());
    assert!(!ok);
    assert!(out.contains(&format!("model folder {}: model.onnx", wrong.path().display())), "{out}");
}

fn palisade_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args).current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `plugins install --gate` refuses a version that loses F1 on the gate set (saying
/// which category and by how much, installing nothing) and takes it when the gate
/// allows; `backtest` shows the same change row by row; `plugins promote --gate`
/// gates a shadow candidate the same way.
#[test]
fn the_install_gate_refuses_a_worse_rule_and_backtest_shows_why() {
    let wasm = root().join("plugins/target/wasm32-wasip2/release/threats.wasm");
    assert!(wasm.is_file(), "run scripts/setup first (it builds the plugins)");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    let prefix = format!("test:cli-gate:{}:", std::process::id());
    let env = [("CLASSIFIER_DIR", "none"), ("REDIS_KEY_PREFIX", prefix.as_str())];
    let (wasm, dir_s) = (wasm.to_str().unwrap(), dir.to_str().unwrap());
    let shipped = "plugins/heuristics/threats/plugin.toml";
    let (ok, out) = palisade_env(&["plugins", "install", "--dir", dir_s, "--manifest", shipped, wasm], &env);
    assert!(ok, "{out}");

    let gate = tmp.path().join("gate.jsonl");
    let rows = [
        ("v1", "I will kill you", "VIOLENCE"),
        ("v2", "i will kill you tonight", "VIOLENCE"),
        ("v3", "I'm going to kill you and your family", "VIOLENCE"),
        ("l1", "see you at lunch tomorrow", "LOW_RISK"),
        ("l2", "happy birthday, have a lovely day", "LOW_RISK"),
    ];
    let lines: Vec<String> = rows
        .iter()
        .map(|(id, text, label)| serde_json::json!({"id": id, "text": text, "label": label}).to_string())
        .collect();
    std::fs::write(&gate, lines.join("\n")).unwrap();
    let worse = tmp.path().join("worse.toml");
    let text = std::fs::read_to_string(root().join(shipped)).unwrap().replacen("weight = 1.0", "weight = 0.1", 1);
    std::fs::write(&worse, text).unwrap();
    let (gate_s, worse_s) = (gate.to_str().unwrap(), worse.to_str().unwrap());

    let install = ["plugins", "install", "--dir", dir_s, "--manifest", worse_s, wasm, "--gate", gate_s];
    let (ok, out) = palisade_env(&[&install[..], &["--max-f1-drop", "0.01"]].concat(), &env);
    assert!(!ok, "{out}");
    assert!(out.contains("refused by the gate") && out.contains("F1 of VIOLENCE drops"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    let installed = std::fs::read_to_string(dir.join("threats.toml")).unwrap();
    assert!(installed.contains("weight = 1.0"), "the installed version is untouched: {installed}");

    let (ok, out) = palisade_env(&["backtest", "--dir", dir_s, "--plugin", wasm, "--manifest", worse_s, gate_s], &env);
    assert!(ok, "{out}");
    assert!(out.contains("3 rows changed category") && out.contains("VIOLENCE → LOW_RISK"), "{out}");

    // The same candidate as a shadow: its promotion is gated too.
    let (ok, out) =
        palisade_env(&["plugins", "install", "--dir", dir_s, "--shadow", "--manifest", worse_s, wasm], &env);
    assert!(ok && out.contains("shadow"), "{out}");
    let promote = ["plugins", "promote", "threats", "--dir", dir_s, "--gate", gate_s];
    let (ok, out) = palisade_env(&promote, &env);
    assert!(!ok && out.contains("F1 of VIOLENCE drops") && out.contains("nothing was changed"), "{out}");
    assert!(dir.join("shadow/threats.toml").is_file(), "the candidate stays in the shadow directory");

    let (ok, out) = palisade_env(&[&install[..], &["--max-f1-drop", "1.0"]].concat(), &env);
    assert!(ok && out.contains("gate passed"), "{out}");
    assert!(std::fs::read_to_string(dir.join("threats.toml")).unwrap().contains("weight = 0.1"));
    // Against the version now installed the shadow loses nothing: promoted, and gone from the shadows.
    let (ok, out) = palisade_env(&promote, &env);
    assert!(ok && out.contains("promoted threats"), "{out}");
    assert!(!dir.join("shadow/threats.toml").exists());
}

/// `plugins keygen`, `plugins sign` and `plugins install` (which takes FILE.sig
/// along): with signatures required, `plugins list` shows the signer; a component
/// copied in without its signature is listed as refused.
#[test]
fn keygen_sign_install_and_list_a_signed_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("threats.wasm");
    std::fs::copy(root().join("plugins/target/wasm32-wasip2/release/threats.wasm"), &wasm)
        .expect("run scripts/setup first (it builds the plugins)");
    let (key, dir) = (tmp.path().join("keys/team"), tmp.path().join("plugins"));
    let (ok, out) = palisade(&["plugins", "keygen", "--out", key.to_str().unwrap()]);
    assert!(ok && out.contains("ed25519:"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(key.with_extension("key")).unwrap().permissions().mode() & 0o777, 0o600);
    let (ok, out) = palisade(&["plugins", "keygen", "--out", key.to_str().unwrap()]);
    assert!(!ok && out.contains("not overwriting"), "{out}");
    let manifest = "plugins/heuristics/threats/plugin.toml";
    let key_file = key.with_extension("key");
    let (ok, out) = palisade(&[
        "plugins",
        "sign",
        wasm.to_str().unwrap(),
        "--manifest",
        manifest,
        "--key",
        key_file.to_str().unwrap(),
    ]);
    assert!(ok && wasm.with_extension("sig").is_file(), "{out}");
    let (ok, out) = palisade(&[
        "plugins",
        "install",
        wasm.to_str().unwrap(),
        "--manifest",
        manifest,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(ok && dir.join("threats.sig").is_file(), "{out}");
    let public = key.with_extension("pub");
    let env = [("PLUGIN_TRUSTED_KEYS", public.to_str().unwrap()), ("PLUGIN_REQUIRE_SIGNATURE", "true")];
    let (ok, out) = palisade_env(&["plugins", "list", "--dir", dir.to_str().unwrap()], &env);
    let id = out.split("ed25519:").nth(1).map(|s| &s[..12]).unwrap_or_default().to_string();
    assert!(ok && out.contains("active") && !id.is_empty(), "{out}");
    std::fs::remove_file(dir.join("threats.sig")).unwrap();
    let (_, out) = palisade_env(&["plugins", "list", "--dir", dir.to_str().unwrap()], &env);
    assert!(out.contains("unsigned: no threats.sig"), "{out}");
}

/// `palisade train` with `--add`: the rows trained on before are read back from
/// beside the earlier artifact (the active one, `CLASSIFIER_DIR`), only the added
/// rows go through the model, and the model is the one a fresh training makes.
#[test]
fn training_again_with_added_rows_embeds_only_those_rows() {
    let sms = std::fs::read_to_string(root().join("data/sms-spam.dev.jsonl")).unwrap();
    let rows: Vec<&str> = sms.lines().step_by(25).take(160).collect();
    assert_eq!(rows.len(), 160);
    let dir = tempfile::tempdir().unwrap();
    let (base, added) = (dir.path().join("base.jsonl"), dir.path().join("team.jsonl"));
    std::fs::write(&base, rows[..120].join("\n")).unwrap();
    std::fs::write(&added, rows[120..].join("\n")).unwrap();
    let train = |out: &str, active: &str, add: bool| {
        let mut args = vec!["train", base.to_str().unwrap()];
        if add {
            args.extend(["--add", added.to_str().unwrap()]);
        }
        let out = dir.path().join(out);
        args.extend([
            "--out",
            out.to_str().unwrap(),
            "--folds",
            "2",
            "--c",
            "3",
            "--class-weight",
            "balanced",
            "--no-rules",
        ]);
        let run = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(&args)
            .env("CLASSIFIER_DIR", dir.path().join(active))
            .current_dir(root())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
        assert!(run.status.success(), "{text}");
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("classifier.json")).unwrap()).unwrap();
        (text, meta["version"].as_str().unwrap().to_string())
    };
    let (first, _) = train("first", "none", false);
    assert!(first.contains("embedded 120 of 120 rows"), "{first}");
    let (second, version) = train("second", "first", true);
    assert!(second.contains("embedded 40 of 160 rows (120 read back"), "{second}");
    let (fresh, fresh_version) = train("fresh", "none", true);
    assert!(fresh.contains("embedded 160 of 160 rows"), "{fresh}");
    assert_eq!(version, fresh_version, "read-back vectors train the same model");
}

/// `palisade screen` answers with the verdict (the rules and the classifier
/// together), not one stage's: a spam message no rule knows is SPAM and high
/// risk while the rules alone say LOW_RISK; an everyday one is low.
#[test]
fn screen_answers_with_the_verdict_and_each_stage_apart() {
    let screen = |text: &str| {
        let (ok, out) = palisade(&["screen", text]);
        assert!(ok, "{out}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let spam = screen("Buy 5,000 real followers for $7.99, fast delivery, see the link in my bio");
    assert_eq!((&spam["category"], &spam["high_risk"]), (&"SPAM".into(), &true.into()), "{spam}");
    assert_eq!(spam["rule_category"], "LOW_RISK", "{spam}");
    assert!(spam["risk_score"].as_f64().unwrap() > 0.5, "{spam}");
    let everyday = screen("see you at the match on saturday, I'll bring snacks");
    assert_eq!((&everyday["category"], &everyday["high_risk"]), (&"LOW_RISK".into(), &false.into()), "{everyday}");
}

/// The toxicity side model is opt-in: `TOXICITY_MODEL` names the file
/// `scripts/setup` converted, `palisade train` records and copies it, and
/// `palisade screen` shows its scores; a wrong path is a clear error.
#[test]
fn training_with_the_toxicity_side_model_is_opt_in_and_says_what_is_wrong() {
    let sms = std::fs::read_to_string(root().join("data/sms-spam.dev.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, sms.lines().step_by(25).take(120).collect::<Vec<_>>().join("\n")).unwrap();
    let out = dir.path().join("clf");
    let args = [
        "train",
        rows.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--folds",
        "2",
        "--c",
        "3",
        "--class-weight",
        "balanced",
        "--no-rules",
        "--no-embedding",
    ];
    let model = root().join("var/models/tox-block/tox-block.bin");
    let (ok, text) = palisade_env(&args, &[("TOXICITY_MODEL", model.to_str().unwrap())]);
    assert!(ok, "{text}");
    assert!(text.contains("toxicity side model tox-block 0.1.2"), "the report names it: {text}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("classifier.json")).unwrap()).unwrap();
    assert_eq!(meta["toxicity"]["kept_out_of"], serde_json::json!(["LOW_RISK", "SPAM"]), "{meta}");
    assert!(out.join("toxicity.bin").is_file());
    let env = [("CLASSIFIER_DIR", out.to_str().unwrap()), ("SCREENING_MODEL", "none")];
    let (ok, screened) = palisade_env(&["screen", "you are a pathetic idiot"], &env);
    assert!(ok, "{screened}");
    let screened: serde_json::Value = serde_json::from_str(&screened).unwrap();
    assert!(screened["classifier"]["toxicity"]["insult"].as_f64().unwrap() > 0.5, "{screened}");
    // Without it (the default), no side model; a wrong path says which and how to fix it.
    let (ok, text) = palisade_env(&args, &[]);
    assert!(ok, "{text}");
    assert!(!text.contains("toxicity side model"), "{text}");
    let (ok, text) = palisade_env(&args, &[("TOXICITY_MODEL", "/nowhere/tox-block.bin")]);
    assert!(!ok && text.contains("TOXICITY_MODEL=/nowhere/tox-block.bin") && text.contains("scripts/setup"), "{text}");
}
