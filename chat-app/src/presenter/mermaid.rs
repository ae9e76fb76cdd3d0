//! The diagram as Mermaid `sequenceDiagram` text, for slides.
//!
//! Mermaid reads a message's text from the `:` to the end of the line, a `;` or a `#` (its
//! sequence grammar's `TXT` token), turns `#…;` into entity codes and renders the text as HTML.
//! So every character that could end the text (`;`, `#`), start an entity, a comment (`%%`) or
//! a directive, open markup (`<`, `&`, quotes), or draw an arrow (`->`, `--`) is written as Mermaid's decimal entity
//! code (`#60;` for `<`: "Entity codes to escape characters" in Mermaid's sequence diagram
//! documentation), and line breaks as spaces: a claim stays one message's text.

use std::fmt::Write;

use super::sequence::{Arrow, Diagram, Lifeline, Outcome};

/// The Mermaid source of `diagram`.
pub fn render(diagram: &Diagram) -> String {
    let mut out = String::from("sequenceDiagram\n");
    let _ = writeln!(out, "    title {}", text(&diagram.title));
    for lifeline in Lifeline::ALL {
        let _ = writeln!(out, "    participant {} as {}", lifeline.id(), text(lifeline.label()));
    }
    for m in &diagram.messages {
        let arrow = match m.arrow {
            Arrow::Call => "->>",
            Arrow::Reply => "-->>",
        };
        let mut label = m.text.clone();
        if let Some(ms) = m.timing {
            label.push_str(&format!(" · {ms:.1} ms"));
        }
        let _ = writeln!(out, "    {}{arrow}{}: {}", m.from.id(), m.to.id(), text(&label));
        if let Some(card) = &m.token {
            let (a, b) = if m.from.index() <= m.to.index() { (m.from, m.to) } else { (m.to, m.from) };
            let mut lines = vec![format!("{} (decoded, no signature)", card.title)];
            let header: Vec<String> = card.header.iter().map(|f| format!("{} {}", f.name, f.value)).collect();
            lines.push(format!("header: {}", header.join(", ")));
            for claim in &card.claims {
                let mark = if claim.changed { " (changed)" } else { "" };
                lines.push(format!("{}: {}{mark}", claim.name, claim.value));
            }
            let body: Vec<String> = lines.iter().map(|l| text(l)).collect();
            let over = if a == b { a.id().to_string() } else { format!("{},{}", a.id(), b.id()) };
            // `<br/>` is ours, between escaped lines: the one piece of markup in a note.
            let _ = writeln!(out, "    Note over {over}: {}", body.join("<br/>"));
        }
        if let Some(v) = &m.verdict {
            let mark = match v.outcome {
                Outcome::Allowed => "allowed",
                Outcome::Denied => "DENIED",
                Outcome::Refused => "refused",
            };
            let _ = writeln!(out, "    Note right of {}: {mark}: {}", v.at.id(), text(&v.text));
        }
    }
    out
}

/// One line of Mermaid message text: see the module documentation.
fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let escape = match c {
            c if c.is_control() => {
                out.push(' ');
                continue;
            }
            '-' => matches!(next, Some('-' | '>')) || i > 0 && chars[i - 1] == '-',
            '#' | ';' | '%' | '<' | '>' | '&' | '"' | '`' | '\\' => true,
            _ => false,
        };
        if escape {
            let _ = write!(out, "#{};", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::sequence::{build, tests::obo_turn};
    use super::*;
    use entra_auth::hop::How;

    #[test]
    fn hostile_text_cannot_end_a_message_or_add_one() {
        let hostile = "Eve\nA->>B: forged; Note over A: pwned %%{init}%% <img src=x onerror=alert(1)> x-->y #35;";
        let mermaid = render(&build(hostile, &obo_turn(hostile), &Vec::new(), How::Obo));
        let statement = |line: &str| {
            let line = line.trim_start();
            line == "sequenceDiagram"
                || ["title ", "participant ", "Note over ", "Note right of "].iter().any(|p| line.starts_with(p))
                || ["->>", "-->>"].iter().any(|a| line.get(1..).is_some_and(|rest| rest.starts_with(a)))
        };
        for line in mermaid.lines() {
            assert!(statement(line), "not one of ours: {line:?}");
            let after = line.split_once(": ").map_or("", |(_, t)| t).replace("<br/>", "");
            for bad in ["<", ">", ";", "%%", "-->", "\n"] {
                // `#60;` and friends are the escapes themselves; only raw characters count.
                let raw = after.split('#').enumerate().all(|(i, part)| {
                    let part = if i == 0 { part } else { part.split_once(';').map_or(part, |(_, rest)| rest) };
                    !part.contains(bad)
                });
                assert!(raw, "{bad:?} in {line:?}");
            }
        }
        assert_eq!(mermaid.lines().filter(|l| l.contains("A->>B")).count(), 0, "no forged message");
        assert!(mermaid.contains("Eve A#45;#62;#62;B: forged#59;"), "{mermaid}");
    }

    #[test]
    fn the_turn_reads_as_a_sequence_diagram() {
        let mermaid = render(&build("turn", &obo_turn("Alice Johnson"), &Vec::new(), How::Obo));
        assert!(mermaid.starts_with("sequenceDiagram\n"));
        assert!(mermaid.contains("participant E as Entra ID"));
        assert!(mermaid.contains("    P->>E: On-Behalf-Of: the user's token as assertion"), "{mermaid}");
        assert!(mermaid.contains("aud: api://x/orders-api-local (changed)"), "{mermaid}");
        assert!(mermaid.contains("Note right of A: allowed: "));
    }
}
