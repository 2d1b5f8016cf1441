//! Mention and emoji floods: more mentions or emoji in one message than a person writes.

use palisade_sdk::{Category, Event, Heuristic, RuleHit, Settings, Verdict, text};

pub struct MentionFlood {
    max_mentions: usize,
    max_emoji: usize,
    weight: f32,
}

impl Heuristic for MentionFlood {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(MentionFlood {
            max_mentions: settings.usize_or("max_mentions", 4)?,
            max_emoji: settings.usize_or("max_emoji", 8)?,
            weight: settings.f32_or("weight", 0.5)?,
        })
    }

    fn score(&self, event: &Event) -> Verdict {
        let mut hits = Vec::new();
        // Grows with how far past the limit the message goes, up to 1.5× the base weight.
        let flood = |rule: &str, n: usize, max: usize, what: &str| RuleHit {
            rule: rule.into(),
            weight: (self.weight * (1.0 + (n - max) as f32 / (2 * max.max(1)) as f32)).min(self.weight * 1.5),
            category: Some(Category::Spam),
            detail: Some(format!("{n} {what} (limit {max})")),
        };
        let mentions = text::mentions(&event.content).len();
        if mentions > self.max_mentions {
            hits.push(flood("mention-flood/mentions", mentions, self.max_mentions, "mentions"));
        }
        let emoji = text::emoji_count(&event.content);
        if emoji > self.max_emoji {
            hits.push(flood("mention-flood/emoji", emoji, self.max_emoji, "emoji"));
        }
        Verdict::from_hits(hits)
    }
}

palisade_sdk::export_heuristic!(MentionFlood);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    #[test]
    fn floods_fire_and_normal_messages_do_not() {
        let h = Harness::<MentionFlood>::heuristic_from_manifest(include_str!("../plugin.toml"));
        assert!(h.score_text("@a @b @c @d @e @f join my server").score >= 0.5);
        assert!(h.score_text("🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥 free").score >= 0.5);
        assert_eq!(h.score_text("thanks @bob 🙂").score, 0.0);
    }
}
