//! The identity trace: for one tool call, the token each hop validated, with what changed from
//! the previous hop (audience, issuer, client at On-Behalf-Of) and what did not (the user).

use entra_auth::hop::{Decision, Hop, How, TokenSummary};
use leptos::prelude::*;

use crate::views::{Names, TraceUrl};

/// How a field compares with the previous hop's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    /// The first hop: nothing to compare with.
    First,
    Same,
    Changed,
}

impl Change {
    fn of(previous: Option<&TokenSummary>, differs: impl Fn(&TokenSummary) -> bool) -> Change {
        match previous {
            None => Change::First,
            Some(p) if differs(p) => Change::Changed,
            Some(_) => Change::Same,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Change::First => "field",
            Change::Same => "field same",
            Change::Changed => "field changed",
        }
    }

    fn badge(self) -> Option<&'static str> {
        match self {
            Change::First => None,
            Change::Same => Some("same"),
            Change::Changed => Some("changed"),
        }
    }
}

pub(crate) fn name_of<'a>(names: &'a Names, id: &str) -> Option<&'a str> {
    names.iter().find(|(k, _)| k.eq_ignore_ascii_case(id)).map(|(_, v)| v.as_str())
}

/// GUIDs shortened to their first 8 digits, and the scheme dropped: what fits on a slide. The
/// full value stays in the element's `title`.
pub(crate) fn short(value: &str) -> String {
    let value = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")).unwrap_or(value);
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while !rest.is_empty() {
        // `get`: a claim value is anyone's text, and 36 bytes in may fall inside a character.
        if let Some(guid) = rest.get(..36).filter(|head| is_guid(head)) {
            out.push_str(&guid[..8]);
            out.push('…');
            rest = &rest[36..];
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
    }
    out
}

fn is_guid(s: &str) -> bool {
    s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

fn how_label(how: How) -> &'static str {
    match how {
        How::SignIn => "from sign-in",
        How::Direct => "sent by the client",
        How::Forwarded => "forwarded: confused deputy",
        How::Obo => "On-Behalf-Of",
    }
}

fn how_class(how: How) -> &'static str {
    match how {
        How::SignIn => "how sign-in",
        How::Direct => "how direct",
        How::Forwarded => "how forwarded",
        How::Obo => "how obo",
    }
}

/// What the link between two hops did to the token.
fn link_text(from: &Hop, to: &Hop) -> String {
    match to.how {
        How::Obo => format!("{} exchanged the token On-Behalf-Of the user", from.service),
        How::Forwarded => format!("{} forwarded the same token (meant for itself)", from.service),
        How::Direct | How::SignIn => format!("{} sent the user's token", from.service),
    }
}

/// The hops of one call, top to bottom.
#[component]
pub fn HopChain(hops: Vec<Hop>, names: Names) -> impl IntoView {
    if hops.is_empty() {
        return view! { <p class="muted">"No hops were reported for this call."</p> }.into_any();
    }
    let items = hops
        .iter()
        .enumerate()
        .map(|(i, hop)| {
            let previous = i.checked_sub(1).and_then(|p| hops.get(p));
            let link = previous.map(|p| {
                view! {
                    <li class="link" aria-hidden="true">
                        <span class="arrow">"↓"</span>
                        {link_text(p, hop)}
                    </li>
                }
            });
            view! {
                {link}
                <HopCard step={i + 1} hop={hop.clone()} previous={previous.map(|p| p.token.clone())} names={names.clone()} />
            }
        })
        .collect_view();
    view! { <ol class="hops">{items}</ol> }.into_any()
}

#[component]
fn HopCard(step: usize, hop: Hop, previous: Option<TokenSummary>, names: Names) -> impl IntoView {
    let t = &hop.token;
    let p = previous.as_ref();
    let named = |id: &str| match name_of(&names, id) {
        Some(name) => (format!("{name}  {}", short(id)), id.to_string()),
        None => (short(id), id.to_string()),
    };
    let mut permissions = Vec::new();
    if !t.scp.is_empty() {
        permissions.push(format!("scp {}", t.scp.join(" ")));
    }
    if !t.roles.is_empty() {
        permissions.push(format!("roles {}", t.roles.join(" ")));
    }
    let permissions = if permissions.is_empty() { "none".to_string() } else { permissions.join(" · ") };
    let user = t.name.clone().unwrap_or_else(|| "(no name)".into());
    let (decision_class, decision) = match &hop.decision {
        Decision::Allowed => ("decision allowed", "allowed".to_string()),
        Decision::Denied { reason } => ("decision denied", format!("denied: {reason}")),
        // The token was accepted: the request failed on its merits, not the identity.
        Decision::Refused { reason } => ("decision refused", format!("token accepted · refused: {reason}")),
    };
    let mut fields = vec![
        ("Audience", named(&t.aud), Change::of(p, |p| p.aud != t.aud)),
        (
            "Issuer",
            (format!("v{}  {}", t.ver, short(&t.iss)), t.iss.clone()),
            Change::of(p, |p| p.iss != t.iss || p.ver != t.ver),
        ),
        ("Permissions", (permissions.clone(), permissions), Change::of(p, |p| p.scp != t.scp || p.roles != t.roles)),
        ("Client", named(&t.client_id), Change::of(p, |p| p.client_id != t.client_id)),
        ("User", (format!("{user}  {}", short(&t.oid)), t.oid.clone()), Change::of(p, |p| p.oid != t.oid)),
        (
            "Token",
            (format!("…{}", t.token_id_suffix), "the last characters of the token's id (uti)".to_string()),
            Change::of(p, |p| p.token_id_suffix != t.token_id_suffix),
        ),
    ];
    // Microsoft Entra Agent ID: who acts for the user, as this hop's token names it.
    if let Some(agent) = &t.agent {
        let agent_name = name_of(&names, &agent.id).unwrap_or("an agent");
        let value = format!("{user}, through agent {agent_name} (agent id {})", short(&agent.id));
        let full = format!("agent id {}, blueprint {}", agent.id, agent.blueprint_id);
        fields.push(("Agent", (value, full), Change::of(p, |p| p.agent.as_ref().map(|a| &a.id) != Some(&agent.id))));
    }
    // The user's Conditional Access step-up (`acrs`), which orders-api's `approved-writes` needs.
    if !t.acrs.is_empty() {
        let value = format!("step-up: {}", t.acrs.join(", "));
        let full = "authentication contexts the user confirmed at sign-in (acrs)".to_string();
        fields.push(("Step-up", (value, full), Change::of(p, |p| p.acrs != t.acrs)));
    }
    let rows = fields
        .into_iter()
        .map(|(label, (value, full), change)| {
            // The user is the one thing that must not change: make a change alarming.
            let class =
                if label == "User" && change == Change::Changed { "field changed alarm" } else { change.class() };
            view! {
                <div class=class data-field=label.to_ascii_lowercase()>
                    <dt>{label}</dt>
                    <dd>
                        <span class="value" title=full>
                            {value}
                        </span>
                        {change.badge().map(|b| view! { <span class="badge">{b}</span> })}
                    </dd>
                </div>
            }
        })
        .collect_view();
    view! {
        <li class="hop" data-service=hop.service.clone()>
            <div class="hop-head">
                <span class="step" aria-hidden="true">
                    {step}
                </span>
                <h3>{hop.service.clone()}</h3>
                <span class=how_class(hop.how)>{how_label(hop.how)}</span>
                <span class=decision_class>{decision}</span>
                <span class="elapsed">{format!("{:.1} ms", hop.elapsed_ms)}</span>
            </div>
            <dl>{rows}</dl>
        </li>
    }
}

/// The call's distributed trace id, linked to the trace viewer when one is configured.
#[component]
pub fn TraceId(id: String, url: Option<TraceUrl>) -> impl IntoView {
    let short = id.chars().take(8).collect::<String>() + "…";
    let label = match url.and_then(|u| u.link(&id)) {
        Some(href) => view! {
            <a href=href target="_blank" rel="noopener noreferrer" title=id.clone()>
                {short}
            </a>
        }
        .into_any(),
        None => view! { <code title=id.clone()>{short}</code> }.into_any(),
    };
    view! { <p class="trace-id" data-testid="trace-id" data-trace-id=id>"Trace " {label}</p> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_are_shortened_for_the_screen() {
        assert_eq!(short("a58242b0-4441-4e9a-b6fa-2c3a3d94ebff"), "a58242b0…");
        assert_eq!(
            short("https://login.microsoftonline.com/afb67780-0dec-4124-a11c-b6e461eb7aad/v2.0"),
            "login.microsoftonline.com/afb67780…/v2.0"
        );
        assert_eq!(short("api://orders-api-local"), "api://orders-api-local");
        assert_eq!(short("not-a-guid-but-thirty-six-characters"), "not-a-guid-but-thirty-six-characters");
        // A character across byte 36 (a claim value is anyone's text): kept, never a panic.
        let accented = format!("{}é-and-more", "a".repeat(35));
        assert_eq!(short(&accented), accented);
    }
}
