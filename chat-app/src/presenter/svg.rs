//! The diagram as SVG, drawn for a projector: 1280 units wide (one unit a pixel at 1280×720),
//! text of at least 16 units, lifelines labelled at the top, a token's decoded claims in a
//! card under the message that carried it, changed claims on an amber band, each hop's verdict
//! on its lifeline. Presentation attributes only (no `<style>`, no script, no ids), so the file
//! stands alone, two diagrams can share a page, and the page's Content-Security-Policy holds.

use std::fmt::Write;

use super::escape::xml;
use super::sequence::{Arrow, Diagram, Lifeline, Message, Outcome, TokenCard, Verdict};

const WIDTH: f64 = 1280.0;
const LEFT: f64 = 100.0;
const STEP: f64 = 180.0;
const TOP: f64 = 70.0;
const HEAD_H: f64 = 54.0;
const ROW: f64 = 50.0;
const LINE: f64 = 25.0;
const CARD_W: f64 = 660.0;
const FONT: &str = "Segoe UI, system-ui, Helvetica, Arial, sans-serif";
const MONO: &str = "Cascadia Code, SFMono-Regular, Consolas, Liberation Mono, monospace";
const INK: &str = "#14213d";
const MUTED: &str = "#4b5563";

fn x(lifeline: Lifeline) -> f64 {
    LEFT + STEP * lifeline.index() as f64
}

/// The SVG document of `diagram`.
pub fn render(diagram: &Diagram) -> String {
    let mut body = String::new();
    let mut y = TOP + HEAD_H + 40.0;
    for message in &diagram.messages {
        y = draw_message(&mut body, message, y);
    }
    let height = y + 20.0;
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="{height}" viewBox="0 0 1280 {height}" role="img" font-family="{FONT}" fill="{INK}"><title>{title}</title><rect width="1280" height="{height}" fill="#ffffff"/><text x="24" y="38" font-size="24" font-weight="700">{title}</text>"##,
        title = xml(&diagram.title),
    );
    for lifeline in Lifeline::ALL {
        let cx = x(lifeline);
        let _ = write!(
            out,
            r##"<line x1="{cx}" y1="{y1}" x2="{cx}" y2="{y2}" stroke="#9aa5b8" stroke-width="2" stroke-dasharray="6 6"/><rect x="{rx}" y="{TOP}" width="164" height="{HEAD_H}" rx="10" fill="#134e9b"/><text x="{cx}" y="{ty}" font-size="20" font-weight="700" fill="#ffffff" text-anchor="middle">{label}</text>"##,
            y1 = TOP + HEAD_H,
            y2 = height - 10.0,
            rx = cx - 82.0,
            ty = TOP + 34.0,
            label = xml(lifeline.label()),
        );
    }
    out.push_str(&body);
    out.push_str("</svg>");
    out
}

/// Draws one message (and its token card and verdict) from `y` down; returns the next `y`.
fn draw_message(out: &mut String, m: &Message, y: f64) -> f64 {
    let (x1, x2) = (x(m.from), x(m.to));
    let dash = if m.arrow == Arrow::Reply { r#" stroke-dasharray="8 5""# } else { "" };
    let mut label = m.text.clone();
    if let Some(ms) = m.timing {
        label.push_str(&format!(" · {ms:.1} ms"));
    }
    if x1 == x2 {
        // A note on one lifeline: nothing travelled.
        let _ = write!(
            out,
            r##"<text x="{tx}" y="{y}" font-size="17" paint-order="stroke" stroke="#ffffff" stroke-width="6" stroke-linejoin="round">{text}</text>"##,
            tx = x1 + 10.0,
            text = xml(&label),
        );
        return y + ROW;
    }
    let line_y = y + 12.0;
    let direction = if x2 > x1 { 1.0 } else { -1.0 };
    let tip = x2 - direction * 4.0;
    let base = tip - direction * 14.0;
    let (anchor, tx) = label_position(x1, x2, &label);
    let _ = write!(
        out,
        r##"<line x1="{x1}" y1="{line_y}" x2="{base}" y2="{line_y}" stroke="{INK}" stroke-width="2.5"{dash}/><polygon points="{tip},{line_y} {base},{top} {base},{bottom}" fill="{INK}"/><text x="{tx}" y="{y}" font-size="17" text-anchor="{anchor}" paint-order="stroke" stroke="#ffffff" stroke-width="6" stroke-linejoin="round">{text}</text>"##,
        top = line_y - 7.0,
        bottom = line_y + 7.0,
        text = xml(&label),
    );
    let mut y = y + ROW;
    if let Some(card) = &m.token {
        y = draw_card(out, card, (x1 + x2) / 2.0, y);
    }
    if let Some(verdict) = &m.verdict {
        y = draw_verdict(out, verdict, y);
    }
    y
}

/// Centred over the arrow when it fits the canvas, else from the canvas edge.
fn label_position(x1: f64, x2: f64, label: &str) -> (&'static str, f64) {
    let width = text_width(label, 17.0);
    let centre = (x1 + x2) / 2.0;
    if centre - width / 2.0 < 12.0 {
        ("start", 12.0)
    } else if centre + width / 2.0 > WIDTH - 12.0 {
        ("end", WIDTH - 12.0)
    } else {
        ("middle", centre)
    }
}

fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.56
}

fn draw_card(out: &mut String, card: &TokenCard, centre: f64, y: f64) -> f64 {
    let left = (centre - CARD_W / 2.0).clamp(12.0, WIDTH - 12.0 - CARD_W);
    let rows = card.claims.len() as f64 + 2.0;
    let height = rows * LINE + 22.0;
    let _ = write!(
        out,
        r##"<g><rect x="{left}" y="{y}" width="{CARD_W}" height="{height}" rx="10" fill="#f8fafc" stroke="#134e9b" stroke-width="2"/><text x="{tx}" y="{ty}" font-size="17" font-weight="700">{title} <tspan font-weight="400" fill="{MUTED}">(decoded; signature removed)</tspan></text>"##,
        tx = left + 14.0,
        ty = y + 24.0,
        title = xml(&card.title),
    );
    let header: Vec<String> = card.header.iter().map(|f| format!("{} {}", f.name, f.value)).collect();
    let _ = write!(
        out,
        r##"<text x="{tx}" y="{ty}" font-size="16" font-family="{MONO}" fill="{MUTED}">header  {text}</text>"##,
        tx = left + 14.0,
        ty = y + 24.0 + LINE,
        text = xml(&header.join(" · ")),
    );
    for (i, claim) in card.claims.iter().enumerate() {
        let row_y = y + 24.0 + LINE * (i as f64 + 2.0);
        let (weight, fill) = if claim.changed { ("700", "#8a3b00") } else { ("400", INK) };
        out.push_str("<g>");
        if !claim.full.is_empty() {
            let _ = write!(out, "<title>{}: {}</title>", xml(claim.name), xml(&claim.full));
        }
        if claim.changed {
            let _ = write!(
                out,
                r##"<rect x="{rx}" y="{ry}" width="{rw}" height="{LINE}" rx="4" fill="#fff4e5" stroke="#f59e0b"/>"##,
                rx = left + 8.0,
                ry = row_y - 18.0,
                rw = CARD_W - 16.0,
            );
        }
        let marker = if claim.changed { "  ◆ changed" } else { "" };
        let _ = write!(
            out,
            r##"<text x="{tx}" y="{row_y}" font-size="16" font-family="{MONO}" font-weight="{weight}" fill="{fill}"><tspan fill="{MUTED}">{name}</tspan><tspan x="{vx}">{value}{marker}</tspan></text></g>"##,
            tx = left + 14.0,
            vx = left + 94.0,
            name = xml(claim.name),
            value = xml(&claim.value),
        );
    }
    out.push_str("</g>");
    y + height + 14.0
}

fn draw_verdict(out: &mut String, verdict: &Verdict, y: f64) -> f64 {
    let (fill, stroke, ink) = match verdict.outcome {
        Outcome::Allowed => ("#ecfdf3", "#22c55e", "#166534"),
        Outcome::Denied => ("#fff1f2", "#e11d48", "#9f1239"),
        Outcome::Refused => ("#fff4e5", "#f59e0b", "#8a3b00"),
    };
    // Bold text runs wider than the plain estimate.
    let width = text_width(&verdict.text, 18.5) + 28.0;
    let left = (x(verdict.at) - width / 2.0).clamp(12.0, (WIDTH - 12.0 - width).max(12.0));
    let _ = write!(
        out,
        r##"<rect x="{left}" y="{y}" width="{width}" height="34" rx="17" fill="{fill}" stroke="{stroke}" stroke-width="2"/><text x="{tx}" y="{ty}" font-size="17" font-weight="700" fill="{ink}">{text}</text>"##,
        tx = left + 14.0,
        ty = y + 23.0,
        text = xml(&verdict.text),
    );
    y + 60.0
}

#[cfg(test)]
mod tests {
    use super::super::sequence::{build, tests::obo_turn};
    use super::*;
    use entra_auth::hop::How;

    #[test]
    fn a_hostile_display_name_stays_text() {
        let hostile = r#"</text><script>alert(1)</script><text>x-->y"#;
        let svg = render(&build(hostile, &obo_turn(hostile), &Vec::new(), How::Obo));
        assert!(!svg.contains("<script"), "markup from a claim: {svg}");
        assert!(svg.contains("&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!svg.contains("-->"), "no raw comment closer");
        // Well formed: every element opened is closed (the only self-closing ones end in "/>").
        let opened = svg.matches("<text ").count();
        assert_eq!(opened, svg.matches("</text>").count(), "{svg}");
        assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count(), "{svg}");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.ends_with("</svg>"));
    }

    #[test]
    fn every_lifeline_is_drawn_and_changed_claims_are_marked() {
        let svg = render(&build("turn", &obo_turn("Alice Johnson"), &Vec::new(), How::Obo));
        for lifeline in Lifeline::ALL {
            assert!(svg.contains(&format!(">{}</text>", xml(lifeline.label()))), "{lifeline:?}");
        }
        assert!(svg.contains("◆ changed"));
        assert!(svg.contains("kid key-1"));
        assert!(svg.contains("· 3.2 ms") || svg.contains("· 3.3 ms"), "timings");
    }
}
