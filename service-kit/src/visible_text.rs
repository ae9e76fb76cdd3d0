//! Text that people and models both read: the characters that show as nothing, or reorder the
//! text around them, and still reach a model reading the text as data. With them what a model
//! reads is not what a person sees: Unicode tags spell hidden ASCII ("ASCII smuggling"), bidi
//! embeddings, overrides and isolates reorder what is shown (Trojan Source, CVE-2021-42574), and
//! the zero-width space, soft hyphen, invisible operators, fillers, the Mongolian vowel
//! separator, Khmer's inherent vowels, the grapheme joiner and the annotation and format
//! controls hide words or split them; and a variation selector that selects nothing (first,
//! after white space, or after another: a run of them spells bytes, "emoji smuggling"). orders-api
//! refuses them in what it stores; chat-app shows any that reach a model (older rows, names from
//! a directory) as visible `<U+XXXX>`.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is always one of the characters above. Zero-width (non-)joiners, direction marks
/// and variation selectors are not: scripts and emoji need them ([`is_zero_width`]).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{034f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' | '\u{180e}'
        | '\u{200b}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e007f}')
}

/// Characters allowed in a name that still show nothing by themselves: the joiners, the
/// direction marks and the variation selectors.
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200c}'..='\u{200f}') || is_variation_selector(c)
}

/// Whether `c` selects a variant of the character before it: emoji and text presentation,
/// ideographic variants, Mongolian forms.
pub fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{180b}'..='\u{180d}' | '\u{180f}' | '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}')
}

/// Whether `c`, after `before` (`None` at the start), hides something.
fn hides(before: Option<char>, c: char) -> bool {
    is_invisible(c)
        || (is_variation_selector(c) && before.is_none_or(|b| b.is_whitespace() || is_variation_selector(b)))
}

/// Whether `text` holds a character that hides something.
pub fn has_hidden(text: &str) -> bool {
    let mut before = None;
    text.chars().any(|c| {
        let hidden = hides(before, c);
        before = Some(c);
        hidden
    })
}

/// `text` with each character that hides something written as `<U+XXXX>`: what was hidden is
/// shown, to the model and to anyone reading the same text.
pub fn reveal(text: &str) -> Cow<'_, str> {
    if !has_hidden(text) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    let mut before = None;
    for c in text.chars() {
        if hides(before, c) {
            let _ = write!(shown, "<U+{:04X}>", u32::from(c));
        } else {
            shown.push(c);
        }
        before = Some(c);
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_text_is_shown_and_other_text_is_untouched() {
        let hidden: String =
            "Keyboard".chars().chain("HI".chars().map(|c| char::from_u32(0xe0000 + u32::from(c)).unwrap())).collect();
        assert_eq!(reveal(&hidden), "Keyboard<U+E0048><U+E0049>");
        assert_eq!(reveal("\u{202e}draobyeK"), "<U+202E>draobyeK");
        let kept = "\u{1f469}\u{200d}\u{1f4bb} \u{5e9}\u{200f} \u{2764}\u{fe0f} \u{1820}\u{180b}";
        assert!(matches!(reveal(kept), Cow::Borrowed(text) if text == kept));
    }

    /// "Emoji smuggling": bytes spelled by variation selectors after one visible character.
    #[test]
    fn variation_selectors_that_select_nothing_are_shown() {
        assert_eq!(reveal("\u{1f600}\u{fe0f}\u{e0100}\u{e0101}"), "\u{1f600}\u{fe0f}<U+E0100><U+E0101>");
        assert_eq!(reveal("\u{fe0f}x \u{fe00}"), "<U+FE0F>x <U+FE00>");
        assert!(!has_hidden("\u{8fbb}\u{e0100}"));
    }
}
