//! Tag changes of nodes and devices (`settags`, `rmtags`) as heketi's
//! API takes them.

use std::collections::BTreeMap;

use hyper::Method;

use super::http::Api;
use crate::http::heketi::TagsChangeRequest;

/// Why a tag change cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// A tag to set that is not `name:value`.
    #[error("'{0}' is not name:value")]
    NotNameValue(String),
    /// `rmtags` with no tag named and without `--all`.
    #[error("name the tags to remove, or give --all")]
    NoneNamed,
}

/// `name:value` words as tags.
fn tags_of(words: &[String]) -> Result<BTreeMap<String, String>, TagError> {
    words
        .iter()
        .map(|w| {
            w.split_once(':')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| TagError::NotNameValue(w.clone()))
        })
        .collect()
}

/// The tag change of `settags` (`exact`: replace) or `rmtags` (`all`:
/// every tag).
pub(super) fn tags_change(
    set: Option<(&[String], bool)>,
    rm: Option<(&[String], bool)>,
) -> Result<TagsChangeRequest, TagError> {
    Ok(match (set, rm) {
        (Some((words, exact)), _) => TagsChangeRequest {
            tags: tags_of(words)?,
            change_type: if exact { "set" } else { "update" }.to_owned(),
        },
        (None, Some((_, true))) => TagsChangeRequest {
            tags: BTreeMap::new(),
            change_type: "set".to_owned(),
        },
        (None, Some((words, false))) => {
            if words.is_empty() {
                return Err(TagError::NoneNamed);
            }
            TagsChangeRequest {
                tags: words
                    .iter()
                    .map(|w| {
                        let name = w.split_once(':').map_or(w.as_str(), |(k, _)| k);
                        (name.to_owned(), String::new())
                    })
                    .collect(),
                change_type: "delete".to_owned(),
            }
        }
        (None, None) => unreachable!("one of set or rm"),
    })
}

/// Send a tag change to a node or device (`kind`: `nodes` or `devices`);
/// `doing` says what it does.
pub(super) async fn send_tags(
    api: &Api,
    kind: &str,
    id: &str,
    change: &TagsChangeRequest,
    doing: &str,
) -> anyhow::Result<()> {
    api.call(
        Method::POST,
        &format!("/{kind}/{id}/tags"),
        Some(change),
        doing,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_changes_follow_heketi() {
        let words = vec!["rack:r1".to_owned(), "ssd:yes".to_owned()];
        let set = tags_change(Some((&words, false)), None).unwrap();
        assert_eq!(set.change_type, "update");
        assert_eq!(set.tags["rack"], "r1");
        assert_eq!(
            tags_change(Some((&words, true)), None).unwrap().change_type,
            "set"
        );
        let rm = tags_change(None, Some((&words, false))).unwrap();
        assert_eq!(rm.change_type, "delete");
        assert!(rm.tags.contains_key("ssd"));
        let all = tags_change(None, Some((&[], true))).unwrap();
        assert_eq!((all.change_type.as_str(), all.tags.len()), ("set", 0));
        let bad = tags_change(Some((&["bad".to_owned()], false)), None).unwrap_err();
        assert_eq!(bad.to_string(), "'bad' is not name:value");
        let none = tags_change(None, Some((&[], false))).unwrap_err();
        assert_eq!(none.to_string(), "name the tags to remove, or give --all");
    }
}
