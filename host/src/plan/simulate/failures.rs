//! Refusals grouped by reason: what differs from claim to claim (its name,
//! sizes, counts) is taken out of a reason, and claims whose reasons are
//! then alike form one group.

use serde::Serialize;

/// How many claims a failure group names (it counts them all).
pub const NAMED_PER_FAILURE: usize = 20;

/// Claims refused for the same reason. Reasons that differ only in the
/// claim's name and in sizes or counts are the same reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    /// The reason, with the claim's name as `<claim>`, sizes as `<size>`
    /// and other numbers as `<n>` (see [`reason_pattern`]).
    pub reason: String,
    /// How many claims.
    pub count: usize,
    /// The first claims (at most [`NAMED_PER_FAILURE`]), in the order played.
    pub claims: Vec<String>,
    /// The first claim's reason, word for word.
    pub example: String,
}

/// A refusal's reason with what differs from claim to claim taken out:
/// the claim's name becomes `<claim>`, a size (`900GiB`, `1.5TiB`, `0B`)
/// `<size>` and another number `<n>`. Digits inside a word (an id, a
/// name such as `r1-a`) stay.
pub fn reason_pattern(claim: &str, reason: &str) -> String {
    let text = replace_name(reason, claim);
    // Digits in a word such as `r1-a`, `db-10` or an id are not numbers.
    let in_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !in_word(chars[i - 1]);
        if starts_word && chars[i].is_ascii_digit() {
            let mut end = i;
            while end < chars.len() && chars[end].is_ascii_digit() {
                end += 1;
            }
            if end + 1 < chars.len() && chars[end] == '.' && chars[end + 1].is_ascii_digit() {
                end += 1;
                while end < chars.len() && chars[end].is_ascii_digit() {
                    end += 1;
                }
            }
            let mut unit_end = end;
            while unit_end < chars.len() && chars[unit_end].is_ascii_alphabetic() {
                unit_end += 1;
            }
            let unit: String = chars[end..unit_end].iter().collect();
            let ends_word = |at: usize| at == chars.len() || !in_word(chars[at]);
            if SIZE_UNITS.contains(&unit.as_str()) && ends_word(unit_end) {
                out.push_str("<size>");
                i = unit_end;
                continue;
            }
            if ends_word(end) {
                out.push_str("<n>");
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `text` with each whole-name occurrence of `name` (not inside a longer
/// name: `db-1` is not replaced in `db-10`) as `<claim>`.
fn replace_name(text: &str, name: &str) -> String {
    if name.is_empty() {
        return text.to_owned();
    }
    let in_name = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (at, _) in text.match_indices(name) {
        let end = at + name.len();
        let before = text[..at].chars().next_back();
        let after = text[end..].chars().next();
        // A trailing `.` ends a sentence, not a name.
        let after_in_name = match after {
            Some('.') => text[end + 1..].chars().next().is_some_and(in_name),
            Some(c) => in_name(c),
            None => false,
        };
        if at < rest || before.is_some_and(in_name) || after_in_name {
            continue;
        }
        out.push_str(&text[rest..at]);
        out.push_str("<claim>");
        rest = end;
    }
    out.push_str(&text[rest..]);
    out
}

/// The units `format_size` writes, and heketi's.
const SIZE_UNITS: &[&str] = &[
    "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "K", "M", "G", "T", "Ki", "Mi", "Gi", "Ti",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_differing_in_the_claim_and_sizes_are_one_reason() {
        assert_eq!(
            reason_pattern(
                "big-209",
                "cannot place 900GiB for volume 'big-209' after 2 brick set(s) holding 452GiB: no device has room left"
            ),
            "cannot place <size> for volume '<claim>' after <n> brick set(s) holding <size>: no device has room left"
        );
        // Only the whole name: db-1 is not the start of db-10.
        assert_eq!(
            reason_pattern("db-1", "volume db-1 is like db-10 and db-1."),
            "volume <claim> is like db-10 and <claim>."
        );
        // Digits inside words (hosts, ids, policy names) stay.
        assert_eq!(
            reason_pattern("x", "r1-a.example.com and cluster 910a2dec: 1.5TiB, 0B, v2"),
            "r1-a.example.com and cluster 910a2dec: <size>, <size>, v2"
        );
    }
}
