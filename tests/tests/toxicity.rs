//! The toxicity side model (tox-block 0.1.2, converted by `scripts/setup`)
//! reproduces the outputs its package documents, and a damaged file is refused.

use palisade_detect::toxicity::{CLASSES, Toxicity};
use palisade_tests::toxicity_model;

/// The three texts and `rescale=True` probabilities of tox-block's README
/// (PyPI page of 0.1.2, "Usage"), in `CLASSES` order.
const DOCUMENTED: [(&str, [f64; 6]); 3] = [
    (
        "Good morning my friend, I hope you're having a fantastic day!",
        [
            0.05347811430692673,
            0.0006274021579883993,
            0.004466842859983444,
            0.009578478522598743,
            0.00757843442261219,
            0.002106667961925268,
        ],
    ),
    (
        "I will kill you, you fucking idiot!",
        [
            0.9998679757118225,
            0.7870362997055054,
            0.9885633587837219,
            0.8483908176422119,
            0.9883397221565247,
            0.171059250831604,
        ],
    ),
    (
        "I do strongly disagree with the fascist views of this joke that calls itself a political party.",
        [
            0.026190076023340225,
            7.185135473264381e-05,
            0.0009493605466559529,
            0.00012321282702032477,
            0.0029190618079155684,
            0.0022098885383456945,
        ],
    ),
];

#[test]
fn the_converted_model_reproduces_the_packages_documented_outputs() {
    let model = Toxicity::load(&toxicity_model()).unwrap();
    for (text, want) in DOCUMENTED {
        let got = model.rescaled(text);
        for (k, class) in CLASSES.iter().enumerate() {
            let got = f64::from(got[k]);
            assert!((got - want[k]).abs() < 1e-4, "{text:?} {class}: {got} vs documented {}", want[k]);
        }
    }
    // The raw scores the classifier takes are probabilities, ordered as documented.
    let threat = model.scores(DOCUMENTED[1].0);
    assert!(threat.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(threat[0] > 0.99 && model.scores(DOCUMENTED[0].0)[0] < 0.1);
    // Case, punctuation and unknown words as Keras's tokenizer treats them.
    assert_eq!(
        model.scores("I WILL KILL YOU... you f*cking-idiot!!"),
        model.scores("i will kill you you f cking idiot")
    );
}

#[test]
fn a_damaged_model_file_is_refused_with_the_reason() {
    let bytes = std::fs::read(toxicity_model()).unwrap();
    let cut = Toxicity::from_bytes(bytes[..bytes.len() / 2].to_vec()).err().unwrap();
    assert!(cut.contains("the file ends inside"), "{cut}");
    let other = Toxicity::from_bytes(b"not a model at all".to_vec()).err().unwrap();
    assert!(other.contains("not a Palisade toxicity model"), "{other}");
}

/// `palisade train` with the side model: its six columns follow the rule
/// features, their weights for `LOW_RISK` and `SPAM` stay 0 (spam odds never
/// depend on it) while a harmful category learns from them, the artifact keeps
/// a copy that a reload checks and uses, and a damaged copy is refused.
#[test]
fn a_classifier_trained_with_the_side_model_carries_it_and_keeps_it_out_of_spam() {
    use palisade_detect::classify::train::{self, ClassWeight, TrainSettings};
    use palisade_detect::classify::{Artifact, CATEGORIES, Classifier, RULE_FEATURES, category_index};
    let files = [palisade_tests::repo_data("sms-spam.dev.jsonl"), palisade_tests::repo_data("palisade-seed.jsonl")];
    let (examples, records) = train::read_examples(&files, None).unwrap();
    let model = std::sync::Arc::new(Toxicity::load(&toxicity_model()).unwrap());
    let settings = |toxicity| TrainSettings {
        folds: 2,
        c_grid: vec![3.0],
        class_weights: vec![ClassWeight::Balanced],
        max_iter: 60,
        cv_max_iter: 30,
        toxicity,
        ..TrainSettings::default()
    };
    let with = train::train(&examples, &settings(Some(model.clone())), records.clone(), false, None).unwrap().artifact;
    let without = train::train(&examples, &settings(None), records, false, None).unwrap().artifact;
    assert_eq!(with.meta.columns, without.meta.columns + CLASSES.len());
    assert!(without.meta.toxicity.is_none());
    assert_eq!((with.meta.format, without.meta.format), (3, 2), "a build from before the side model reads the second");
    let classes = CATEGORIES.len();
    let first = with.buckets.len() + RULE_FEATURES;
    let weight = |col: usize, c: &str| with.w[col * classes + category_index(c).unwrap()];
    for col in first..first + CLASSES.len() {
        assert_eq!((weight(col, "LOW_RISK"), weight(col, "SPAM")), (0.0, 0.0), "column {col}");
    }
    let learned = (first..first + CLASSES.len()).map(|col| weight(col, "TOXIC").abs()).fold(0f32, f32::max);
    assert!(learned > 0.01, "TOXIC learns from the side model's scores: {learned}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf");
    let mut saved = with.clone();
    saved.save(&path).unwrap();
    let meta = saved.meta.toxicity.as_ref().expect("described in classifier.json");
    assert_eq!(meta.sha256, model.sha256);
    assert_eq!(meta.kept_out_of, ["LOW_RISK", "SPAM"]);
    let rules = palisade_plugins::rules::RuleResult::none();
    let text = "you are a worthless idiot and everyone hates you";
    let (in_memory, reloaded) = (Classifier::new(saved), Classifier::new(Artifact::load(&path, None).unwrap()));
    assert_eq!(in_memory.score(text, &rules).scores, reloaded.score(text, &rules).scores);
    assert_ne!(
        in_memory.score(text, &rules).scores,
        Classifier::new(without).score(text, &rules).scores,
        "the side model's scores are used"
    );
    let copy = path.join(palisade_detect::toxicity::FILE);
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&copy, bytes).unwrap();
    let e = Artifact::load(&path, None).unwrap_err().to_string();
    assert!(e.contains("toxicity.sha256") && e.contains("corrupt"), "{e}");
}
