//! Settings: the `<policy>.<key>` StorageClass parameters given to a policy,
//! with the prefix removed, plus typed accessors whose errors name the key.

use std::fmt::Display;
use std::str::FromStr;

use crate::Pairs;
use crate::size::parse_size;
use crate::tags::TagSelector;

/// A policy's settings: the StorageClass parameters `<policy>.<key>`, with
/// the prefix removed. The typed accessors name the key in their errors, so
/// a policy can return them as they are.
///
/// ```
/// use aplo_policy_sdk::prelude::*;
///
/// let settings = Settings::from_pairs(
///     [("strict", "yes"), ("free-floor", "50Gi"), ("device-tags", "disktype=ssd")]
///         .map(|(k, v)| (k.to_string(), v.to_string())),
/// );
/// settings.only(&["strict", "free-floor", "device-tags"])?;
/// assert!(settings.flag("strict", false)?);
/// assert_eq!(settings.size("free-floor")?, Some(50 * GIB));
/// assert_eq!(settings.size("absent")?, None);
/// assert_eq!(settings.selectors("device-tags")?.len(), 1);
/// assert_eq!(
///     settings.only(&["strict"]).unwrap_err(),
///     "unknown setting 'device-tags' (known settings: strict)"
/// );
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings(Pairs);

/// Parse a setting of the form `key=value;key=value` (volume options, for
/// instance). Blank items are skipped and keys and values trimmed. A key
/// given twice is refused: gluster would keep one of the two values, and
/// which one the writer meant is not known.
///
/// ```
/// let options = aplo_policy_sdk::settings::parse_pairs("a.b=1; c.d = on").unwrap();
/// assert_eq!(options.get("c.d").map(String::as_str), Some("on"));
/// assert!(aplo_policy_sdk::settings::parse_pairs("a.b=1;a.b=2").is_err());
/// ```
pub fn parse_pairs(text: &str) -> Result<Pairs, String> {
    let mut pairs = Pairs::new();
    for item in text.split(';').filter(|item| !item.trim().is_empty()) {
        let (key, value) = item
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("'{item}' is not key=value"))?;
        if pairs.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!("'{key}' is given more than once"));
        }
    }
    Ok(pairs)
}

impl Settings {
    /// Settings from key/value pairs; a repeated key keeps its last value.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Settings {
        Settings(pairs.into_iter().collect())
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every setting, sorted by key.
    pub fn pairs(&self) -> &Pairs {
        &self.0
    }

    /// Refuse any key not in `known`, naming it and listing the known ones.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|key| !known.contains(&key.as_str())) {
            None => Ok(()),
            Some(key) if known.is_empty() => Err(format!(
                "unknown setting '{key}': this policy takes no settings"
            )),
            Some(key) => Err(format!(
                "unknown setting '{key}' (known settings: {})",
                known.join(", ")
            )),
        }
    }

    /// Parse `key` with `FromStr`, or return `default` when it is absent.
    pub fn parse<T>(&self, key: &str, default: T) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|err| format!("setting '{key}': '{raw}' is not valid: {err}")),
        }
    }

    /// A boolean: `true`/`false`, `yes`/`no`, `on`/`off` or `1`/`0`.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key).map(|raw| raw.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(raw) => match raw.as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(format!(
                    "setting '{key}': '{raw}' is not a boolean (use true or false)"
                )),
            },
        }
    }

    /// A size such as `10Gi`, `500M` or `1048576`, in bytes.
    pub fn size(&self, key: &str) -> Result<Option<u64>, String> {
        self.get(key)
            .map(|raw| parse_size(raw).map_err(|err| format!("setting '{key}': {err}")))
            .transpose()
    }

    /// A comma-separated list of tag selectors, e.g. `disktype=ssd,rack!=r1`.
    pub fn selectors(&self, key: &str) -> Result<Vec<TagSelector>, String> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(raw) => {
                TagSelector::parse_list(raw).map_err(|err| format!("setting '{key}': {err}"))
            }
        }
    }

    /// One of `choices`, or `default` when absent.
    pub fn choice<'a>(
        &'a self,
        key: &str,
        choices: &[&str],
        default: &'a str,
    ) -> Result<&'a str, String> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) if choices.contains(&raw) => Ok(raw),
            Some(raw) => Err(format!(
                "setting '{key}': '{raw}' is not one of {}",
                choices.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = settings(&[("strcit", "true")])
            .only(&["strict"])
            .unwrap_err();
        assert!(err.contains("'strcit'") && err.contains("strict"), "{err}");
        assert!(
            settings(&[("x", "1")])
                .only(&[])
                .unwrap_err()
                .contains("takes no settings")
        );
    }

    #[test]
    fn typed_accessors_name_the_key() {
        let s = settings(&[("strict", "maybe"), ("max", "10Gi"), ("n", "x")]);
        assert!(s.flag("strict", false).unwrap_err().contains("'strict'"));
        assert_eq!(s.size("max").unwrap(), Some(10 << 30));
        assert!(s.parse::<u32>("n", 1).unwrap_err().contains("'n'"));
        assert_eq!(s.parse::<u32>("absent", 7).unwrap(), 7);
    }
}
