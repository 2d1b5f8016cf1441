//! The vocabulary the host and the plugin SDK share, so that neither copies it
//! and the host need not depend on the guest SDK:
//! - [`Category`]: the risk categories, with their wire names (`LOW_RISK`, …);
//! - [`manifest`] (feature `manifest`): a manifest's `[settings]` as the text a
//!   plugin is handed.
//!
//! This crate must stay small and dependency-free (serde and toml behind
//! features): plugins compile it to WebAssembly.

#[cfg(feature = "manifest")]
pub mod manifest;

/// Risk categories (the seed's names in upper snake case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Category {
    #[default]
    LowRisk,
    Spam,
    Toxic,
    TargetedHarassment,
    HateSpeech,
    Violence,
    Sexual,
}

impl Category {
    /// Every category, `LowRisk` first (the classifier's column order).
    pub const ALL: [Category; 7] = [
        Category::LowRisk,
        Category::Spam,
        Category::Toxic,
        Category::TargetedHarassment,
        Category::HateSpeech,
        Category::Violence,
        Category::Sexual,
    ];

    /// The wire name: `LOW_RISK`, `SPAM`, ….
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::LowRisk => "LOW_RISK",
            Category::Spam => "SPAM",
            Category::Toxic => "TOXIC",
            Category::TargetedHarassment => "TARGETED_HARASSMENT",
            Category::HateSpeech => "HATE_SPEECH",
            Category::Violence => "VIOLENCE",
            Category::Sexual => "SEXUAL",
        }
    }

    /// Parse a wire name (`SPAM`) or a WIT name (`spam`, `hate-speech`).
    pub fn parse(name: &str) -> Option<Category> {
        let upper = name.trim().to_ascii_uppercase().replace('-', "_");
        Category::ALL.into_iter().find(|c| c.as_str() == upper)
    }

    /// Its position in [`Category::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether it is a risk (anything but `LowRisk`).
    pub const fn is_risky(self) -> bool {
        !matches!(self, Category::LowRisk)
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Category {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for Category {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Category::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown category `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::Category;

    #[test]
    fn wire_names_round_trip_in_column_order() {
        for (i, c) in Category::ALL.into_iter().enumerate() {
            assert_eq!((Category::parse(c.as_str()), c.index()), (Some(c), i));
        }
        assert_eq!(Category::parse("hate-speech"), Some(Category::HateSpeech));
        assert_eq!(Category::parse("nope"), None);
        assert!(!Category::LowRisk.is_risky() && Category::Sexual.is_risky());
    }
}
