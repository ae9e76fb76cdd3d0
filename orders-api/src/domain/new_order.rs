//! A request to create an order, validated: what a customer may order, and how many.

use sha2::{Digest, Sha256};

pub const PRODUCT_MAX_CHARS: usize = 200;
/// [`Product::parse`]'s rule as a regular expression for the OpenAPI document: no control
/// character (Unicode `Cc`) and at least one character that is not white space. The white space
/// is spelled out (Rust's `char::is_whitespace` less the control characters) because `\s`
/// differs between regex dialects.
pub const PRODUCT_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\
    [^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]\
    [^\\u0000-\\u001f\\u007f-\\u009f]*$";
pub const QUANTITY_MIN: i64 = 1;
pub const QUANTITY_MAX: i64 = 1000;

/// A product name: trimmed, 1 to 200 characters, one line of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product(String);

impl Product {
    pub fn parse(raw: &str) -> Result<Product, String> {
        // Checked on the text as sent, so that the OpenAPI document can state the same rule
        // (`PRODUCT_PATTERN`, `maxLength`); only the stored value is trimmed.
        if raw.chars().any(char::is_control) {
            return Err("product must not contain control characters (such as line breaks or tabs)".to_string());
        }
        if raw.chars().count() > PRODUCT_MAX_CHARS {
            return Err(format!("product must be at most {PRODUCT_MAX_CHARS} characters"));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("product must not be empty".to_string());
        }
        Ok(Product(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many items: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub fn parse(raw: i64) -> Result<Quantity, String> {
        if (QUANTITY_MIN..=QUANTITY_MAX).contains(&raw) {
            Ok(Quantity(raw))
        } else {
            Err(format!("quantity must be between {QUANTITY_MIN} and {QUANTITY_MAX}, got {raw}"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub product: Product,
    pub quantity: Quantity,
}

impl NewOrder {
    /// Validates both fields and reports every problem, not just the first.
    pub fn parse(product: &str, quantity: i64) -> Result<NewOrder, Vec<String>> {
        match (Product::parse(product), Quantity::parse(quantity)) {
            (Ok(product), Ok(quantity)) => Ok(NewOrder { product, quantity }),
            (product, quantity) => Err(product.err().into_iter().chain(quantity.err()).collect()),
        }
    }

    /// Identifies the request for idempotency: two requests with the same normalised content
    /// (after trimming) have the same fingerprint, whatever their JSON formatting.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::json!([self.product.as_str(), self.quantity.get()]).to_string();
        format!("{:x}", Sha256::digest(canonical.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_is_trimmed_and_bounded_in_characters() {
        assert_eq!(Product::parse("  Keyboard \u{3000}").unwrap().as_str(), "Keyboard");
        assert!(Product::parse("Keyboard\t").is_err(), "a tab is a control character");
        assert!(
            Product::parse(&format!(" {}", "x".repeat(PRODUCT_MAX_CHARS))).is_err(),
            "the limit is on the text sent"
        );
        assert!(Product::parse("").is_err());
        assert!(Product::parse("   ").is_err());
        assert!(Product::parse("line\nbreak").is_err());
        let at_limit = "é".repeat(PRODUCT_MAX_CHARS);
        assert_eq!(Product::parse(&at_limit).unwrap().as_str(), at_limit, "the limit counts characters, not bytes");
        assert!(Product::parse(&"x".repeat(PRODUCT_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn the_documented_pattern_is_the_parsed_rule() {
        let schema =
            serde_json::json!({ "type": "string", "pattern": PRODUCT_PATTERN, "maxLength": PRODUCT_MAX_CHARS });
        let documented = jsonschema::validator_for(&schema).unwrap();
        for text in [
            "Keyboard",
            " Keyboard ",
            "\u{3000}é\u{3000}",
            "\u{feff}",
            "a",
            "日本",
            "x\u{2028}y",
            "\u{a0}\u{a0}z",
            "",
            " ",
            "\u{3000}",
            "\u{2028}\u{2029}",
            "a\tb",
            "line\nbreak",
            "\u{85}x",
            "x\u{7f}",
            "\u{a0}\u{1680}\u{205f}",
        ] {
            assert_eq!(
                documented.is_valid(&serde_json::json!(text)),
                Product::parse(text).is_ok(),
                "the document and the server disagree about {text:?}"
            );
        }
    }

    #[test]
    fn quantity_is_one_to_a_thousand() {
        for ok in [1, 2, 999, 1000] {
            assert_eq!(Quantity::parse(ok).unwrap().get(), ok);
        }
        for bad in [i64::MIN, -1, 0, 1001, i64::MAX] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let problems = NewOrder::parse(" ", 0).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn fingerprints_ignore_whitespace_around_the_product_only() {
        let a = NewOrder::parse("Keyboard", 2).unwrap();
        let b = NewOrder::parse(" Keyboard ", 2).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), NewOrder::parse("Keyboard", 3).unwrap().fingerprint());
        assert_ne!(a.fingerprint(), NewOrder::parse("keyboard", 2).unwrap().fingerprint());
    }
}
