//! Text from a policy made inert before aplo shows it anywhere.
//!
//! A policy's words reach terminals (`aplo policy inspect`, `list`,
//! `eval`), Kubernetes events, logs and HTTP bodies: refusal reasons,
//! panic messages, what `describe()` says (description, version, setting
//! keys, descriptions and defaults) and any detail that quotes the guest.
//! None of it may move a cursor, recolour a terminal, set its title, hide
//! or reorder what follows, or fill a log. [`inert`] is the one sanitiser
//! for all of it:
//!
//! - ANSI escape sequences are removed whole: `ESC [ … final` (CSI),
//!   `ESC ] … BEL` and the other string sequences (OSC, DCS, SOS, PM, APC,
//!   up to their terminator, or to the end if there is none), two-character
//!   `ESC x` sequences, and their one-character C1 forms (U+009B, U+009D…);
//! - every other control character (C0, DEL, C1, and the line and
//!   paragraph separators U+2028/U+2029) becomes a space, so a message
//!   stays one line;
//! - invisible format characters are removed: the bidirectional embeddings,
//!   overrides and isolates (U+202A–U+202E, U+2066–U+2069), the marks
//!   U+200E, U+200F and U+061C, zero-width characters, the word joiner and
//!   invisible operators, the byte-order mark, interlinear annotations and
//!   tag characters;
//! - the result is trimmed and cut to a byte cap at a character boundary,
//!   ending in `…` when cut.
//!
//! It is idempotent: cleaning clean text changes nothing.

use aplo_policy_types::{Info, SettingDoc};

/// The longest policy description kept.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// The longest policy version kept.
pub const MAX_VERSION_LEN: usize = 64;
/// The longest setting key kept.
pub const MAX_SETTING_KEY_LEN: usize = 128;
/// The longest setting default kept.
pub const MAX_SETTING_DEFAULT_LEN: usize = 256;
/// The most settings a description lists; more are dropped.
pub const MAX_SETTINGS: usize = 256;
/// The longest detail of a fault or load error that quotes the guest or
/// wasmtime.
pub const MAX_DETAIL_LEN: usize = 2048;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';
/// C1 string terminator.
const ST: char = '\u{9c}';

/// `text` with escape sequences and invisible format characters removed,
/// other control characters turned into spaces, trimmed, and cut to at
/// most `max_bytes` bytes (the last of which are `…` when cut).
pub fn inert(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                // nF: intermediates, then a final byte.
                Some(' '..='/') => {
                    while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                    chars.next_if(|c| matches!(c, '0'..='~'));
                }
                // Fp, Fe, Fs: one more character.
                Some('0'..='~') => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.push(' '),
            c if invisible(c) => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    let mut text = if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_owned()
    };
    cap(&mut text, max_bytes);
    text
}

/// Whether `text` has nothing [`inert`] would remove or replace: no control
/// character (so no escape sequence), no line or paragraph separator and
/// no invisible format character. For checks that refuse such text rather
/// than clean it, such as values that go into a command line.
pub fn is_inert(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() || invisible(c) || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// Skip a control sequence's parameters and intermediates (0x20–0x3F) and
/// its final byte (0x40–0x7E). A sequence broken by anything else ends
/// there; what broke it is kept for the caller.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| matches!(c, ' '..='?')).is_some() {}
    chars.next_if(|c| matches!(c, '@'..='~'));
}

/// Skip a string sequence up to and including its terminator: BEL,
/// `ESC \` or ST. Without one, everything to the end is skipped.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            BEL | ST => return,
            ESC if chars.peek() == Some(&'\\') => {
                chars.next();
                return;
            }
            _ => {}
        }
    }
}

/// Format characters that are invisible but change how text around them
/// is shown or read.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}'                       // soft hyphen
        | '\u{61c}'                    // Arabic letter mark
        | '\u{180e}'                   // Mongolian vowel separator
        | '\u{200b}'..='\u{200f}'      // zero-width space/joiners, LRM, RLM
        | '\u{202a}'..='\u{202e}'      // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'      // word joiner, invisible operators
        | '\u{2066}'..='\u{206f}'      // bidi isolates, deprecated formats
        | '\u{feff}'                   // byte-order mark
        | '\u{fff9}'..='\u{fffb}'      // interlinear annotations
        | '\u{e0000}'..='\u{e007f}' // tag characters
    )
}

/// Cut `text` to at most `max_bytes`, ending in `…` when cut.
fn cap(text: &mut String, max_bytes: usize) {
    if text.len() <= max_bytes {
        return;
    }
    let mut cut = max_bytes.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('…');
}

/// What a policy says about itself, every field made inert and capped.
pub fn inert_info(info: Info) -> Info {
    Info {
        description: inert(&info.description, MAX_DESCRIPTION_LEN),
        version: inert(&info.version, MAX_VERSION_LEN),
        settings: info
            .settings
            .into_iter()
            .take(MAX_SETTINGS)
            .map(|s| SettingDoc {
                key: inert(&s.key, MAX_SETTING_KEY_LEN),
                description: inert(&s.description, MAX_DESCRIPTION_LEN),
                default: s.default.map(|d| inert(&d, MAX_SETTING_DEFAULT_LEN)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No character a terminal would act on, and nothing invisible.
    fn assert_inert(text: &str) {
        assert!(is_inert(text), "{text:?}");
    }

    #[test]
    fn escape_sequences_are_removed_whole() {
        let cases = [
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}[2J\u{1b}[1;1Hclear", "clear"),
            ("\u{1b}[?1049hscreen", "screen"),
            ("a\u{1b}]0;owned title\u{7}b", "ab"),
            (
                "a\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\b",
                "alinkb",
            ),
            ("a\u{1b}Pdcs\u{1b}\\b", "ab"),
            ("a\u{1b}(0b", "ab"),
            ("a\u{1b}cb", "ab"),
            ("a\u{1b}7b\u{1b}8", "ab"),
            ("a\u{9b}31mb", "ab"),
            ("a\u{9d}0;title\u{9c}b", "ab"),
            ("unterminated \u{1b}]0;the rest", "unterminated"),
            ("cut \u{1b}[31", "cut"),
            ("broken \u{1b}[3é", "broken é"),
            ("lone \u{1b}", "lone"),
        ];
        for (raw, clean) in cases {
            let got = inert(raw, 100);
            assert_eq!(got, clean, "{raw:?}");
            assert_inert(&got);
        }
    }

    #[test]
    fn controls_become_spaces_and_format_characters_go() {
        assert_eq!(inert("  no\nspace\t\r", 100), "no space");
        assert_eq!(inert("a\u{0}b\u{7f}c\u{85}d", 100), "a b c d");
        assert_eq!(inert("line\u{2028}next", 100), "line next");
        let bidi = "safe\u{202e}txt.exe\u{202c} \u{2066}x\u{2069} \u{200f}\u{200e}\u{61c}\u{feff}\u{200b}y";
        assert_eq!(inert(bidi, 100), "safetxt.exe x y");
        assert_eq!(inert("tag\u{e0041}\u{e007f}s", 100), "tags");
        assert_eq!(inert("né 日本 ok", 100), "né 日本 ok");
        assert!(is_inert("né 日本 ok") && !is_inert("a\u{202e}b") && !is_inert("a\nb"));
    }

    #[test]
    fn length_is_capped_at_a_character_boundary() {
        let long = inert(&"é".repeat(2000), 1024);
        assert!(long.len() <= 1024 && long.ends_with('…'), "{}", long.len());
        assert_eq!(inert("short", 1024), "short");
        assert_eq!(inert("abcdef", 5), "ab…");
    }

    #[test]
    fn cleaning_is_idempotent() {
        for raw in [
            "\u{1b}[31m x \u{202e}y\n",
            &"é".repeat(600),
            "  \u{1b}]0;t\u{7}  a  ",
        ] {
            let once = inert(raw, 1024);
            assert_eq!(inert(&once, 1024), once, "{raw:?}");
        }
    }

    #[test]
    fn every_field_of_a_description_is_cleaned() {
        let hostile = "\u{1b}[2J\u{1b}]0;pwned\u{7}ok\u{202e}\n";
        let info = inert_info(Info {
            description: hostile.repeat(500),
            version: hostile.into(),
            settings: (0..1000)
                .map(|_| SettingDoc {
                    key: hostile.into(),
                    description: hostile.into(),
                    default: Some(hostile.into()),
                })
                .collect(),
        });
        assert!(info.description.len() <= MAX_DESCRIPTION_LEN);
        assert_inert(&info.description);
        assert_eq!(info.version, "ok");
        assert_eq!(info.settings.len(), MAX_SETTINGS);
        let s = &info.settings[0];
        assert_eq!(
            (s.key.as_str(), s.description.as_str(), s.default.as_deref()),
            ("ok", "ok", Some("ok"))
        );
    }
}
