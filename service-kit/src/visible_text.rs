//! Text that people and models both read: the characters that show as nothing, or reorder the
//! text around them, and still reach a model reading the text as data. With them what a model
//! reads is not what a person sees: Unicode tags spell hidden ASCII ("ASCII smuggling"), bidi
//! embeddings, overrides and isolates reorder what is shown (Trojan Source, CVE-2021-42574), and
//! the zero-width space, soft hyphen, invisible operators, fillers, Mongolian free variation
//! selectors, Khmer's inherent vowels, the grapheme joiner and the annotation and format
//! controls hide words or split them. orders-api refuses them in what it stores; chat-app shows
//! any that reach a model (older rows, names from a directory) as visible `<U+XXXX>`.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is one of the characters above. Zero-width (non-)joiners, direction marks and
/// variation selectors are not: scripts and emoji need them ([`is_zero_width`]).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{034f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' | '\u{180b}'..='\u{180f}'
        | '\u{200b}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e007f}')
}

/// Characters allowed in a name that still show nothing by themselves: the joiners, the
/// direction marks and the variation selectors.
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200c}'..='\u{200f}' | '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}')
}

/// `text` with each invisible character written as `<U+XXXX>`: what was hidden is shown, to the
/// model and to anyone reading the same text.
pub fn reveal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_invisible) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_invisible(c) {
            let _ = write!(shown, "<U+{:04X}>", u32::from(c));
        } else {
            shown.push(c);
        }
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
        let kept = "\u{1f469}\u{200d}\u{1f4bb} \u{5e9}\u{200f} \u{2764}\u{fe0f}";
        assert!(matches!(reveal(kept), Cow::Borrowed(text) if text == kept));
    }
}
