//! The azd environment file format: what `azd env get-values` prints and `.azure/<env>/.env`
//! holds. One `KEY="value"` per line; double-quoted values use backslash escapes.

use std::collections::BTreeMap;

/// Parses dotenv text. Blank lines and `#` comments are skipped; a malformed line is an error
/// naming its line number, never silently dropped.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, raw)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=value", index + 1));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: {key:?} is not a variable name", index + 1));
        }
        let value = unquote(raw.trim()).map_err(|e| format!("line {}: {e}", index + 1))?;
        values.insert(key.to_string(), value);
    }
    Ok(values)
}

fn unquote(raw: &str) -> Result<String, String> {
    if let Some(rest) = raw.strip_prefix('\'') {
        return rest.strip_suffix('\'').map(str::to_string).ok_or_else(|| "unterminated single quote".to_string());
    }
    let Some(rest) = raw.strip_prefix('"') else {
        return Ok(raw.to_string());
    };
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let trailing = chars.as_str().trim();
                return if trailing.is_empty() || trailing.starts_with('#') {
                    Ok(out)
                } else {
                    Err(format!("unexpected text after the closing quote: {trailing:?}"))
                };
            }
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => return Err("unterminated escape".to_string()),
            },
            other => out.push(other),
        }
    }
    Err("unterminated double quote".to_string())
}

/// One `KEY="value"` line, escaped so [`parse`] reads back exactly `value`.
pub fn line(key: &str, value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            other => escaped.push(other),
        }
    }
    format!("{key}=\"{escaped}\"")
}

/// The whole file for `values`, one line each, in key order.
pub fn render(values: &BTreeMap<String, String>) -> String {
    values.iter().map(|(k, v)| line(k, v) + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_azd_writes() {
        let text = "# comment\nAZURE_ENV_NAME=\"dev\"\n\nCHAT_APP_URL=\"https://chat.example\"\nPLAIN=x y \nSINGLE='a\"b'\nexport E=\"1\"\n";
        let values = parse(text).unwrap();
        assert_eq!(values["AZURE_ENV_NAME"], "dev");
        assert_eq!(values["CHAT_APP_URL"], "https://chat.example");
        assert_eq!(values["PLAIN"], "x y");
        assert_eq!(values["SINGLE"], "a\"b");
        assert_eq!(values["E"], "1");
    }

    #[test]
    fn escapes_round_trip() {
        let tricky = "quote \" backslash \\ newline \n tab \t end";
        let mut values = BTreeMap::new();
        values.insert("K".to_string(), tricky.to_string());
        values.insert("EMPTY".to_string(), String::new());
        assert_eq!(parse(&render(&values)).unwrap(), values);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        assert_eq!(parse("A=\"1\"\nnonsense\n").unwrap_err(), "line 2: expected KEY=value");
        assert!(parse("A=\"open\n").unwrap_err().starts_with("line 1: unterminated"));
        assert!(parse("BAD KEY=1\n").unwrap_err().contains("not a variable name"));
        assert!(parse("A=\"x\" trailing\n").unwrap_err().contains("after the closing quote"));
    }
}
