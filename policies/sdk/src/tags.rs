//! Tag selectors: `key=value`, `key!=value`, `key` (present) and `!key`
//! (absent), matched against device and node tags.

use std::fmt;

use crate::Pairs;

/// One condition on tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelector {
    /// `key=value`: the tag is present with this value.
    Equals(String, String),
    /// `key!=value`: the tag is absent or has another value.
    NotEquals(String, String),
    /// `key`: the tag is present, with any value.
    Present(String),
    /// `!key`: the tag is absent.
    Absent(String),
}

impl TagSelector {
    /// Parse one selector.
    pub fn parse(text: &str) -> Result<TagSelector, String> {
        let text = text.trim();
        let valid_key = |key: &str| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        };
        let selector = if let Some((key, value)) = text.split_once("!=") {
            TagSelector::NotEquals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = text.split_once('=') {
            TagSelector::Equals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some(key) = text.strip_prefix('!') {
            TagSelector::Absent(key.trim().to_owned())
        } else {
            TagSelector::Present(text.to_owned())
        };
        if valid_key(selector.key()) {
            Ok(selector)
        } else {
            Err(format!(
                "'{text}' is not a tag selector (use key=value, key!=value, key or !key)"
            ))
        }
    }

    /// Parse a comma-separated list; empty items are ignored.
    ///
    /// ```
    /// use aplo_policy_sdk::tags::{TagSelector, matches_all};
    ///
    /// let ssd_not_r1 = TagSelector::parse_list("disktype=ssd, rack!=r1")?;
    /// let tags = [("disktype".to_string(), "ssd".to_string())].into();
    /// assert!(matches_all(&ssd_not_r1, &tags));
    /// assert!(TagSelector::parse_list("=ssd").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse_list(text: &str) -> Result<Vec<TagSelector>, String> {
        text.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(TagSelector::parse)
            .collect()
    }

    /// The key the selector looks at.
    pub fn key(&self) -> &str {
        match self {
            TagSelector::Equals(key, _) | TagSelector::NotEquals(key, _) => key,
            TagSelector::Present(key) | TagSelector::Absent(key) => key,
        }
    }

    /// Whether a tag value (`None` when the tag is absent) satisfies this selector.
    pub fn accepts(&self, value: Option<&str>) -> bool {
        match self {
            TagSelector::Equals(_, want) => value == Some(want.as_str()),
            TagSelector::NotEquals(_, unwanted) => value != Some(unwanted.as_str()),
            TagSelector::Present(_) => value.is_some(),
            TagSelector::Absent(_) => value.is_none(),
        }
    }

    /// Whether `tags` satisfy this selector.
    pub fn matches(&self, tags: &Pairs) -> bool {
        self.accepts(tags.get(self.key()).map(String::as_str))
    }
}

impl fmt::Display for TagSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagSelector::Equals(k, v) => write!(f, "{k}={v}"),
            TagSelector::NotEquals(k, v) => write!(f, "{k}!={v}"),
            TagSelector::Present(k) => write!(f, "{k}"),
            TagSelector::Absent(k) => write!(f, "!{k}"),
        }
    }
}

/// Whether `tags` satisfy every selector.
pub fn matches_all(selectors: &[TagSelector], tags: &Pairs) -> bool {
    selectors.iter().all(|s| s.matches(tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Pairs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_as_documented() {
        let ssd = tags(&[("disktype", "ssd")]);
        let none = Pairs::new();
        let list = TagSelector::parse_list("disktype=ssd, rack!=r1,, !retired").unwrap();
        assert!(matches_all(&list, &ssd));
        assert!(!matches_all(&list, &none));
        assert!(TagSelector::parse("disktype!=ssd").unwrap().matches(&none));
        assert!(!TagSelector::parse("disktype!=ssd").unwrap().matches(&ssd));
        assert!(TagSelector::parse("disktype").unwrap().matches(&ssd));
        assert!(TagSelector::parse("=x").is_err());
        assert_eq!(TagSelector::parse("a!=b").unwrap().to_string(), "a!=b");
    }
}
