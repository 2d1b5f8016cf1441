//! Event policy (the seed's rules, configurable): required fields, content length in
//! characters, platform and event-type whitelists, ID format, and an optional author.

use palisade_sdk::{Event, Settings, Validator, Violation};

pub struct Policy {
    min_len: usize,
    max_len: usize,
    require_author: bool,
    platforms: Vec<String>,
    event_types: Vec<String>,
    max_id: usize,
}

impl Validator for Policy {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(Policy {
            min_len: settings.usize_or("min_content_length", 1)?,
            max_len: settings.usize_or("max_content_length", 10_000)?,
            require_author: settings.bool_or("require_author", false)?,
            platforms: settings.list("platforms"),
            event_types: settings.list("event_types"),
            max_id: settings.usize_or("max_id_length", 128)?,
        })
    }

    fn validate(&self, e: &Event) -> Vec<Violation> {
        let mut out = Vec::new();
        for (field, value) in [("event_id", &e.event_id), ("user_id", &e.user_id)] {
            self.check_id(field, value, &mut out);
        }
        if let Some(author) = &e.author_id {
            self.check_id("author_id", author, &mut out);
        } else if self.require_author {
            out.push(Violation::new("author_id", "required", "author_id is required"));
        }
        if let Some(channel) = &e.channel_id {
            self.check_id("channel_id", channel, &mut out);
        }
        let chars = e.content.chars().count();
        if e.content.trim().is_empty() {
            out.push(Violation::new("content", "required", "content is empty"));
        } else if chars < self.min_len {
            out.push(Violation::new(
                "content",
                "too_short",
                format!("content has {chars} characters, minimum {}", self.min_len),
            ));
        } else if chars > self.max_len {
            out.push(Violation::new(
                "content",
                "too_long",
                format!("content has {chars} characters, maximum {}", self.max_len),
            ));
        }
        whitelist("platform", &e.platform, &self.platforms, &mut out);
        whitelist("event_type", &e.event_type, &self.event_types, &mut out);
        out
    }
}

impl Policy {
    fn check_id(&self, field: &str, value: &str, out: &mut Vec<Violation>) {
        if value.is_empty() {
            out.push(Violation::new(field, "required", format!("{field} is required")));
        } else if value.len() > self.max_id || !value.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c))
        {
            out.push(Violation::new(
                field,
                "invalid_format",
                format!("{field} must be 1–{} characters of letters, digits and _ - . : @", self.max_id),
            ));
        }
    }
}

fn whitelist(field: &str, value: &str, allowed: &[String], out: &mut Vec<Violation>) {
    if value.is_empty() {
        out.push(Violation::new(field, "required", format!("{field} is required")));
    } else if !allowed.is_empty() && !allowed.iter().any(|a| a == value) {
        out.push(Violation::new(
            field,
            "not_allowed",
            format!("{field} `{value}` is not one of: {}", allowed.join(", ")),
        ));
    }
}

palisade_sdk::export_validator!(Policy);

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sdk::testing::Harness;

    fn codes(e: &Event, settings: Option<&str>) -> Vec<(String, String)> {
        let h = match settings {
            None => Harness::<Policy>::validator_from_manifest(include_str!("../plugin.toml")),
            Some(extra) => Harness::<Policy>::validator_from_manifest(&format!(
                "{}\n{extra}",
                include_str!("../plugin.toml").replace("require_author = false", "")
            )),
        };
        h.validate(std::slice::from_ref(e)).remove(0).into_iter().map(|v| (v.field, v.code)).collect()
    }

    #[test]
    fn a_good_event_passes() {
        assert!(codes(&Event::message("hello"), None).is_empty());
    }

    #[test]
    fn the_seeds_event_types_pass() {
        for t in ["message_created", "message_edited", "message_deleted", "reaction_added", "member_joined"] {
            let e = Event { event_type: t.into(), ..Event::message("hello") };
            assert!(codes(&e, None).is_empty(), "{t}");
        }
        let e = Event { event_type: "message_exploded".into(), ..Event::message("hello") };
        assert_eq!(codes(&e, None), [("event_type".to_string(), "not_allowed".to_string())]);
    }

    #[test]
    fn each_rule_names_field_and_code() {
        let mut e = Event::message("x".repeat(10_001));
        e.platform = "myspace".into();
        e.event_id = "bad id!".into();
        e.author_id = None;
        let got = codes(&e, Some("require_author = true"));
        for want in [
            ("content", "too_long"),
            ("platform", "not_allowed"),
            ("event_id", "invalid_format"),
            ("author_id", "required"),
        ] {
            assert!(got.contains(&(want.0.into(), want.1.into())), "missing {want:?} in {got:?}");
        }
        assert_eq!(codes(&Event::message("   "), None), [("content".to_string(), "required".to_string())]);
    }
}
