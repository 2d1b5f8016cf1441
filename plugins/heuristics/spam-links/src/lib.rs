//! Spam: links (more for URL shorteners) and scam / marketing phrases.

use palisade_sdk::text::{self, KeywordSet};
use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict};

pub struct SpamLinks {
    shorteners: Vec<String>,
    phrases: KeywordSet,
    raw_phrases: Vec<String>,
    link_weight: f32,
    shortener_weight: f32,
    phrase_weight: f32,
}

impl Heuristic for SpamLinks {
    fn new(settings: &Settings) -> Result<Self, String> {
        let raw_phrases = settings.list("phrases");
        Ok(SpamLinks {
            shorteners: settings.list("shorteners").into_iter().map(|s| s.to_ascii_lowercase()).collect(),
            phrases: KeywordSet::new(&raw_phrases),
            // Phrases with symbols (`£1000`, `18+`) are matched on the raw lowercase text too.
            raw_phrases: raw_phrases
                .into_iter()
                .filter(|p| p.chars().any(|c| !c.is_alphanumeric() && c != ' '))
                .map(|p| p.to_lowercase())
                .collect(),
            link_weight: settings.f32_or("link_weight", 0.2)?,
            shortener_weight: settings.f32_or("shortener_weight", 0.45)?,
            phrase_weight: settings.f32_or("phrase_weight", 0.5)?,
        })
    }

    fn score(&self, event: &Event) -> Verdict {
        let mut hits = Vec::new();
        let hit = |rule: &str, weight: f32, detail: String| RuleHit {
            rule: rule.into(),
            weight,
            category: Some(Category::Spam),
            detail: Some(detail),
        };
        let urls = text::urls(&event.content);
        let short: Vec<String> =
            urls.iter().map(|u| text::url_host(u)).filter(|h| self.shorteners.contains(h)).collect();
        if !short.is_empty() {
            hits.push(hit("spam-links/shortener", self.shortener_weight, format!("shortened link via {}", short[0])));
        } else if !urls.is_empty() {
            hits.push(hit("spam-links/link", self.link_weight, format!("{} link(s)", urls.len())));
        }
        let mut phrases = self.phrases.find(&text::words(&event.content));
        let lower = event.content.to_lowercase();
        phrases.extend(self.raw_phrases.iter().filter(|p| lower.contains(p.as_str())).cloned());
        phrases.sort();
        phrases.dedup();
        if !phrases.is_empty() {
            let weight = (self.phrase_weight + 0.1 * (phrases.len() - 1) as f32).min(0.95);
            hits.push(hit("spam-links/phrase", weight, format!("matched: {}", phrases.join(", "))));
        }
        Verdict::from_hits(hits)
    }
}

palisade_sdk::export_heuristic!(SpamLinks);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    fn rule() -> Harness<SpamLinks> {
        Harness::heuristic_from_manifest(include_str!("../plugin.toml"))
    }

    #[test]
    fn scam_with_shortener_scores_high() {
        let v = rule().score_text("WINNER!! You have won a £1000 cash prize. Claim your prize at bit.ly/abc now");
        assert_eq!(v.category, Some(Category::Spam));
        assert!(v.score >= 0.8, "{v:?}");
    }

    #[test]
    fn a_plain_link_is_weak_and_chat_is_clean() {
        let link = rule().score_text("docs are at https://example.org/guide");
        assert!(link.score > 0.0 && link.score < 0.3, "{link:?}");
        assert_eq!(rule().score_text("see you at lunch").score, 0.0);
    }
}
