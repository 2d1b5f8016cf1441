//! Building blocks shared by rule plugins: a keyword rule whose list, category and
//! weights come from settings.

use crate::text::{KeywordSet, Words};
use crate::{Category, RuleHit, Settings};

/// A keyword list that fires one hit naming what matched. The hit's weight is
/// `base` for the first distinct match plus `step` for each further one (max 1).
#[derive(Debug, Clone)]
pub struct KeywordRule {
    pub rule: String,
    pub category: Category,
    pub base: f32,
    pub step: f32,
    pub set: KeywordSet,
}

impl KeywordRule {
    /// From settings: `keywords` (list; `defaults` when absent), `base_weight`,
    /// `step_weight`, and `category` (a category name).
    pub fn from_settings(
        rule: &str,
        settings: &Settings,
        category: Category,
        defaults: &[&str],
        base: f32,
    ) -> Result<Self, String> {
        let category = match settings.get("category") {
            Some(name) => Category::parse(&name).ok_or(format!("setting `category`: unknown category `{name}`"))?,
            None => category,
        };
        let set = KeywordSet::new(settings.list_or("keywords", defaults));
        if set.is_empty() {
            return Err("setting `keywords` is empty".into());
        }
        Ok(KeywordRule {
            rule: rule.into(),
            category,
            base: settings.f32_or("base_weight", base)?,
            step: settings.f32_or("step_weight", 0.1)?,
            set,
        })
    }

    /// The hit for these normalised words, if anything matched.
    pub fn hit(&self, words: &Words) -> Option<RuleHit> {
        let mut found = self.set.find(words);
        if found.is_empty() {
            return None;
        }
        found.sort();
        found.dedup();
        Some(RuleHit {
            rule: self.rule.clone(),
            weight: (self.base + self.step * (found.len() - 1) as f32).min(1.0),
            category: Some(self.category),
            detail: Some(format!("matched: {}", found.join(", "))),
        })
    }
}

impl KeywordRule {
    /// The verdict on one text: this rule's hit, if any.
    pub fn verdict(&self, content: &str) -> crate::Verdict {
        crate::Verdict::from_hits(self.hit(&crate::text::words(content)).into_iter().collect())
    }
}

/// A whole keyword rule plugin in one line: a type wrapping a [`KeywordRule`]
/// (list, category and weights from its manifest settings), exported as the
/// plugin's heuristic. `keyword_heuristic!(Threats, "threats", Category::Violence, 0.9);`
#[macro_export]
macro_rules! keyword_heuristic {
    ($ty:ident, $rule:expr, $category:expr, $base:expr) => {
        pub struct $ty($crate::rules::KeywordRule);

        impl $crate::Heuristic for $ty {
            fn new(settings: &$crate::Settings) -> ::std::result::Result<Self, ::std::string::String> {
                $crate::rules::KeywordRule::from_settings($rule, settings, $category, &[], $base).map($ty)
            }

            fn score(&self, event: &$crate::Event) -> $crate::Verdict {
                self.0.verdict(&event.content)
            }
        }

        $crate::export_heuristic!($ty);
    };
}
