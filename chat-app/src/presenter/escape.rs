//! Text made safe for XML (the SVG) and HTML: markup characters become entities, and characters
//! XML 1.0 forbids (most control characters, unpaired surrogates cannot occur in a `str`, the
//! noncharacters U+FFFE and U+FFFF) become U+FFFD, so no claim can end an element, open one, or
//! make the document unreadable.

/// `text` for an element's content or a quoted attribute value.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_forbidden_characters_are_neutralised() {
        assert_eq!(
            xml(r#"</text><script>alert("x")</script>"#),
            "&lt;/text&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(xml("a & 'b'"), "a &amp; &#39;b&#39;");
        assert_eq!(xml("a\u{0}b\u{1b}c\nd\u{FFFF}"), "a\u{FFFD}b\u{FFFD}c d\u{FFFD}");
    }
}
