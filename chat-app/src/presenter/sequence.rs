//! One chat turn as a sequence diagram: the lifelines (browser, chat-app, model, orders-mcp,
//! Entra, orders-api, SQLite) and the messages between them, built once from what the turn
//! recorded (its question, tool calls with their hop records, and answer). The SVG and the
//! Mermaid renderers draw this model; neither looks at a turn itself.
//!
//! Every string here may come from someone else (a display name, a product, the model's text):
//! the model keeps them as plain text, and each renderer escapes them for its format.

use entra_auth::hop::{AgentNamedAs, Decision, Hop, How, TokenSummary};

use crate::transcript::{ApprovalState, Entry, ToolCall};
use crate::ui::trace::{name_of, short};
use crate::views::Names;

/// The longest label text kept (the rest becomes `…`): a slide has no room for more.
const MAX_LABEL: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifeline {
    Browser,
    ChatApp,
    Model,
    OrdersMcp,
    Entra,
    OrdersApi,
    Sqlite,
}

impl Lifeline {
    /// Left to right, in the order a request travels.
    pub const ALL: [Lifeline; 7] = [
        Lifeline::Browser,
        Lifeline::ChatApp,
        Lifeline::Model,
        Lifeline::OrdersMcp,
        Lifeline::Entra,
        Lifeline::OrdersApi,
        Lifeline::Sqlite,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Lifeline::Browser => "Browser",
            Lifeline::ChatApp => "chat-app",
            Lifeline::Model => "Model",
            Lifeline::OrdersMcp => "orders-mcp",
            Lifeline::Entra => "Entra ID",
            Lifeline::OrdersApi => "orders-api",
            Lifeline::Sqlite => "SQLite",
        }
    }

    /// A short identifier (Mermaid's participant id).
    pub fn id(self) -> &'static str {
        match self {
            Lifeline::Browser => "B",
            Lifeline::ChatApp => "C",
            Lifeline::Model => "M",
            Lifeline::OrdersMcp => "P",
            Lifeline::Entra => "E",
            Lifeline::OrdersApi => "A",
            Lifeline::Sqlite => "D",
        }
    }

    pub fn index(self) -> usize {
        Lifeline::ALL.iter().position(|l| *l == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrow {
    Call,
    Reply,
}

/// One message of the diagram, with what rode on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub from: Lifeline,
    pub to: Lifeline,
    pub arrow: Arrow,
    pub text: String,
    /// Milliseconds, as the hop that answered measured it.
    pub timing: Option<f64>,
    /// The token this message carried, decoded (never the token itself).
    pub token: Option<TokenCard>,
    /// What the receiving hop decided about the identity.
    pub verdict: Option<Verdict>,
}

/// A token's decoded header and claims, the signature removed.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenCard {
    pub title: String,
    pub header: Vec<Field>,
    pub claims: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    /// What fits on a slide (GUIDs shortened, known ids named).
    pub value: String,
    /// The whole value.
    pub full: String,
    /// Differs from the same claim of the token at the previous hop.
    pub changed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    Refused,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub at: Lifeline,
    pub outcome: Outcome,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagram {
    pub title: String,
    pub messages: Vec<Message>,
}

/// What one turn recorded, in order.
#[derive(Debug, Clone, Default)]
pub struct TurnRecord {
    pub question: Option<String>,
    pub calls: Vec<ToolCall>,
    pub answer: Option<String>,
}

impl TurnRecord {
    /// The turn's part of a conversation: its question, its calls, and the text that followed.
    pub fn from_entries(entries: &[Entry]) -> TurnRecord {
        let mut record = TurnRecord::default();
        for entry in entries {
            match entry {
                Entry::User { text } => record.question = Some(text.clone()),
                Entry::Tool(call) => record.calls.push(call.clone()),
                Entry::Assistant { text } => record.answer = Some(text.clone()),
                Entry::Error { message } | Entry::StepUp { message, .. } => record.answer = Some(message.clone()),
            }
        }
        record
    }
}

/// How orders-mcp reached orders-api when its hop record is missing (orders-api refused the
/// token before it could report one): `Obo` normally, `Forwarded` in the passthrough replay.
pub type Downstream = How;

/// Builds the diagram of `turn`.
pub fn build(title: &str, turn: &TurnRecord, names: &Names, downstream: Downstream) -> Diagram {
    let mut d = Builder { names, messages: Vec::new() };
    let question = turn.question.as_deref().map_or_else(|| "a message".to_string(), |q| format!("“{q}”"));
    d.push(Lifeline::Browser, Lifeline::ChatApp, Arrow::Call, format!("sends {question} (session cookie only)"));
    for call in &turn.calls {
        d.push(Lifeline::ChatApp, Lifeline::Model, Arrow::Call, "chat completion (chat-app's own identity)".into());
        let arguments = serde_json::to_string(&call.arguments).unwrap_or_default();
        d.push(Lifeline::Model, Lifeline::ChatApp, Arrow::Reply, format!("proposes {}({arguments})", call.name));
        if let Some(approval) = &call.approval {
            d.push(Lifeline::ChatApp, Lifeline::Browser, Arrow::Call, format!("asks: {}?", approval.summary));
            let answer = match &approval.state {
                ApprovalState::Approved { by, .. } => format!("Approved by {by}"),
                ApprovalState::Declined { by, .. } => format!("Declined by {by}"),
                ApprovalState::Expired { .. } => "no answer in time".to_string(),
                ApprovalState::Pending => "no answer yet".to_string(),
            };
            d.push(Lifeline::Browser, Lifeline::ChatApp, Arrow::Reply, answer);
        }
        d.tool_call(call, downstream);
        d.push(Lifeline::ChatApp, Lifeline::Model, Arrow::Call, "tool result, fenced as data (no token)".into());
    }
    let answer = turn.answer.as_deref().map_or_else(|| "no answer".to_string(), |a| format!("“{a}”"));
    if !turn.calls.is_empty() {
        d.push(Lifeline::Model, Lifeline::ChatApp, Arrow::Reply, format!("answers {answer}"));
    }
    d.push(
        Lifeline::ChatApp,
        Lifeline::Browser,
        Arrow::Reply,
        "the answer and the identity trace (claims only)".into(),
    );
    Diagram { title: clip(title), messages: d.messages }
}

struct Builder<'a> {
    names: &'a Names,
    messages: Vec<Message>,
}

impl Builder<'_> {
    fn push(&mut self, from: Lifeline, to: Lifeline, arrow: Arrow, text: String) -> &mut Message {
        self.messages.push(Message { from, to, arrow, text: clip(&text), timing: None, token: None, verdict: None });
        let last = self.messages.len() - 1;
        &mut self.messages[last]
    }

    /// One tool call, from chat-app down to SQLite and back, from its hop records.
    fn tool_call(&mut self, call: &ToolCall, downstream: Downstream) {
        let names = self.names;
        let Some(outcome) = &call.outcome else {
            self.push(
                Lifeline::ChatApp,
                Lifeline::OrdersMcp,
                Arrow::Call,
                format!("tools/call {} (no answer)", call.name),
            );
            return;
        };
        let hop = |service: &str| outcome.hops.iter().find(|h| h.service == service);
        let (sent, mcp, api) = (hop(crate::mcp::SERVICE), hop("orders-mcp"), hop("orders-api"));
        if sent.is_none() && mcp.is_none() {
            // Refused before any hop was recorded (unknown tool, not approved): nothing travelled.
            let text = format!("{}: not called ({})", call.name, outcome.summary);
            self.push(Lifeline::ChatApp, Lifeline::ChatApp, Arrow::Call, text);
            return;
        }
        let user_token = mcp.or(sent).map(|h| &h.token);
        let message = self.push(
            Lifeline::ChatApp,
            Lifeline::OrdersMcp,
            Arrow::Call,
            format!("tools/call {} + the user's token", call.name),
        );
        message.token = user_token.map(|t| card(names, "the user's token, from sign-in", t, None));
        message.verdict = Some(match mcp {
            Some(mcp) => verdict(Lifeline::OrdersMcp, mcp),
            None => Verdict { at: Lifeline::OrdersMcp, outcome: Outcome::Denied, text: outcome.summary.clone() },
        });
        let Some(mcp) = mcp else { return };
        if mcp.decision != Decision::Allowed {
            self.reply(Lifeline::OrdersMcp, Lifeline::ChatApp, "refused".into(), Some(mcp.elapsed_ms));
            return;
        }
        let how = api.map_or(downstream, |a| a.how);
        if how == How::Obo {
            self.push(
                Lifeline::OrdersMcp,
                Lifeline::Entra,
                Arrow::Call,
                "On-Behalf-Of: the user's token as assertion".into(),
            );
            let message = self.push(
                Lifeline::Entra,
                Lifeline::OrdersMcp,
                Arrow::Reply,
                "a token for orders-api, same user".into(),
            );
            message.token = api.map(|a| card(names, "On-Behalf-Of token", &a.token, user_token));
        }
        let text = match how {
            How::Obo => "REST call + the On-Behalf-Of token".to_string(),
            _ => "REST call + the same token, forwarded".to_string(),
        };
        let message = self.push(Lifeline::OrdersMcp, Lifeline::OrdersApi, Arrow::Call, text);
        if how != How::Obo {
            // The forwarded token is the one orders-mcp received: its claims, compared with themselves.
            message.token = api.map(|a| &a.token).or(user_token).map(|t| card(names, "forwarded token", t, user_token));
        }
        message.verdict = Some(match api {
            Some(api) => verdict(Lifeline::OrdersApi, api),
            // orders-api reports a hop only for a token it validated: this one it did not.
            None => Verdict {
                at: Lifeline::OrdersApi,
                outcome: Outcome::Denied,
                text: clip(&format!("✗ 401: {}", refusal(&outcome.summary))),
            },
        });
        if let Some(api) = api {
            if api.decision == Decision::Allowed {
                let who = api.token.name.clone().unwrap_or_else(|| short(&api.token.oid));
                self.push(
                    Lifeline::OrdersApi,
                    Lifeline::Sqlite,
                    Arrow::Call,
                    format!("query: the orders {who} may see"),
                );
                self.push(Lifeline::Sqlite, Lifeline::OrdersApi, Arrow::Reply, "rows".into());
            }
            let status = match &api.decision {
                Decision::Allowed => "result".to_string(),
                Decision::Denied { .. } => "403 / 401".to_string(),
                Decision::Refused { reason } => format!("refused: {reason}"),
            };
            self.reply(Lifeline::OrdersApi, Lifeline::OrdersMcp, status, Some(api.elapsed_ms));
        } else {
            self.reply(Lifeline::OrdersApi, Lifeline::OrdersMcp, "401: token refused".into(), None);
        }
        let round_trip = sent.map(|s| format!(" (round trip {:.1} ms)", s.elapsed_ms)).unwrap_or_default();
        let text = if outcome.is_error {
            format!("error{round_trip}: {}", outcome.summary)
        } else {
            format!("result + hop records{round_trip}")
        };
        self.reply(Lifeline::OrdersMcp, Lifeline::ChatApp, text, Some(mcp.elapsed_ms));
    }

    fn reply(&mut self, from: Lifeline, to: Lifeline, text: String, timing: Option<f64>) {
        self.push(from, to, Arrow::Reply, text).timing = timing;
    }
}

fn verdict(at: Lifeline, hop: &Hop) -> Verdict {
    let how = match hop.how {
        How::SignIn => "from sign-in",
        How::Direct => "sent by its client",
        How::Forwarded => "forwarded: confused deputy",
        How::Obo => "On-Behalf-Of",
    };
    let (outcome, text) = match &hop.decision {
        Decision::Allowed => (Outcome::Allowed, format!("✓ {} accepted the token ({how})", hop.service)),
        Decision::Denied { reason } => (Outcome::Denied, format!("✗ {} denied: {reason}", hop.service)),
        Decision::Refused { reason } => (Outcome::Refused, format!("token accepted · refused: {reason}")),
    };
    Verdict { at, outcome, text: clip(&text) }
}

/// The decoded token, each claim marked when it differs from `previous`.
fn card(names: &Names, title: &str, t: &TokenSummary, previous: Option<&TokenSummary>) -> TokenCard {
    let named = |id: &str| match name_of(names, id) {
        Some(name) => format!("{name} ({})", short(id)),
        None => short(id),
    };
    let header = match &t.header {
        Some(h) => vec![
            field("alg", h.alg.clone(), h.alg.clone(), false),
            field("typ", h.typ.clone().unwrap_or_else(|| "(none)".into()), h.typ.clone().unwrap_or_default(), false),
            field("kid", clip(&h.kid), h.kid.clone(), false),
        ],
        None => vec![field("header", "not recorded".into(), String::new(), false)],
    };
    let differs = |f: &dyn Fn(&TokenSummary) -> String| previous.is_some_and(|p| f(p) != f(t));
    let client_claim = if t.ver == "1.0" { "appid" } else { "azp" };
    let mut claims = vec![
        field("aud", named(&t.aud), t.aud.clone(), differs(&|s| s.aud.clone())),
        field("iss", short(&t.iss), t.iss.clone(), differs(&|s| s.iss.clone())),
        field("ver", t.ver.clone(), t.ver.clone(), differs(&|s| s.ver.clone())),
        field("scp", t.scp.join(" "), t.scp.join(" "), differs(&|s| s.scp.join(" "))),
    ];
    if !t.roles.is_empty() || previous.is_some_and(|p| !p.roles.is_empty()) {
        claims.push(field("roles", t.roles.join(" "), t.roles.join(" "), differs(&|s| s.roles.join(" "))));
    }
    claims.extend([
        field(client_claim, named(&t.client_id), t.client_id.clone(), differs(&|s| s.client_id.clone())),
        field("oid", short(&t.oid), t.oid.clone(), differs(&|s| s.oid.clone())),
        field(
            "name",
            t.name.clone().unwrap_or_default(),
            t.name.clone().unwrap_or_default(),
            differs(&|s| s.name.clone().unwrap_or_default()),
        ),
        field("tid", short(&t.tid), t.tid.clone(), differs(&|s| s.tid.clone())),
        field("exp", t.exp.to_string(), t.exp.to_string(), differs(&|s| s.exp.to_string())),
        field(
            "uti",
            format!("…{}", t.token_id_suffix),
            "the last characters of the token id".into(),
            differs(&|s| s.token_id_suffix.clone()),
        ),
    ]);
    // Microsoft Entra Agent ID: where the token names the agent acting for the user
    // (docs/agent-identity.md), right after the client it was issued to.
    if let Some(agent) = &t.agent {
        let agent_of = |s: &TokenSummary| s.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        let fields = match agent.named_as {
            AgentNamedAs::Client => vec![field(
                "xms_par_app_azp",
                named(&agent.blueprint_id),
                agent.blueprint_id.clone(),
                differs(&|s| s.agent.as_ref().map(|a| a.blueprint_id.clone()).unwrap_or_default()),
            )],
            AgentNamedAs::PriorActor => {
                vec![field("act.sub", named(&agent.id), agent.id.clone(), differs(&agent_of))]
            }
        };
        let at = claims.iter().position(|f| f.name == client_claim).map_or(claims.len(), |i| i + 1);
        claims.splice(at..at, fields);
    }
    // Conditional Access step-up (`approved-writes`, docs/agent-identity.md): the contexts the
    // user confirmed, shown where a token carries them.
    if !t.acrs.is_empty() {
        let acrs = t.acrs.join(" ");
        claims.push(field("acrs", acrs.clone(), acrs, differs(&|s| s.acrs.join(" "))));
    }
    TokenCard { title: title.to_string(), header, claims }
}

fn field(name: &'static str, value: String, full: String, changed: bool) -> Field {
    Field { name, value: clip(&value), full, changed }
}

/// orders-api's own words in orders-mcp's report of a refused token ("orders-api refused the
/// token: <reason> (passthrough mode: ...)"), or the whole summary.
pub fn refusal(summary: &str) -> &str {
    let reason = summary.split_once("refused the token: ").map_or(summary, |(_, reason)| reason);
    reason.split(" (passthrough mode").next().unwrap_or(reason)
}

/// At most [`MAX_LABEL`] characters, control characters as spaces.
fn clip(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= MAX_LABEL {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_LABEL - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::transcript::ToolOutcome;
    use entra_auth::hop::TokenHeader;

    pub(crate) fn token(aud: &str, ver: &str, client: &str, name: &str) -> TokenSummary {
        TokenSummary {
            aud: aud.into(),
            iss: "https://login.microsoftonline.com/afb67780-0dec-4124-a11c-b6e461eb7aad/v2.0".into(),
            ver: ver.into(),
            scp: vec!["access_as_user".into()],
            roles: vec![],
            client_id: client.into(),
            oid: "a58242b0-4441-4e9a-b6fa-2c3a3d94ebff".into(),
            name: Some(name.into()),
            tid: "afb67780-0dec-4124-a11c-b6e461eb7aad".into(),
            exp: 1_900_000_000,
            token_id_suffix: "AbC123".into(),
            header: Some(TokenHeader { alg: "RS256".into(), typ: Some("JWT".into()), kid: "key-1".into() }),
            agent: None,
            acrs: vec![],
        }
    }

    pub(crate) fn hop(service: &str, token: TokenSummary, how: How, decision: Decision) -> Hop {
        Hop { service: service.into(), token, how, decision, elapsed_ms: 3.25 }
    }

    /// A turn whose one call went through On-Behalf-Of, the user named `name`.
    pub(crate) fn obo_turn(name: &str) -> TurnRecord {
        let user = token("8f0c7f6e-mcp", "2.0", "chat-app-id", name);
        let mut obo = token("api://x/orders-api-local", "1.0", "orders-mcp-id", name);
        obo.scp = vec!["Orders.Read".into()];
        TurnRecord {
            question: Some("show my orders".into()),
            calls: vec![ToolCall {
                id: "t-1".into(),
                name: "list_orders".into(),
                arguments: serde_json::json!({}),
                outcome: Some(ToolOutcome {
                    summary: "3 orders".into(),
                    is_error: false,
                    hops: vec![
                        hop("chat-app", user.clone(), How::SignIn, Decision::Allowed),
                        hop("orders-mcp", user, How::Direct, Decision::Allowed),
                        hop("orders-api", obo, How::Obo, Decision::Allowed),
                    ],
                }),
                trace_id: None,
                approval: None,
            }],
            answer: Some("You have 3 orders.".into()),
        }
    }

    #[test]
    fn an_obo_call_goes_through_entra_and_the_audience_changes_there() {
        let d = build("t", &obo_turn("Alice Johnson"), &Vec::new(), How::Obo);
        let to_entra = d.messages.iter().position(|m| m.to == Lifeline::Entra).unwrap();
        let from_entra = &d.messages[to_entra + 1];
        assert_eq!(from_entra.from, Lifeline::Entra);
        let card = from_entra.token.as_ref().unwrap();
        let changed: Vec<&str> = card.claims.iter().filter(|c| c.changed).map(|c| c.name).collect();
        assert!(changed.contains(&"aud") && changed.contains(&"ver") && changed.contains(&"appid"), "{changed:?}");
        assert!(!changed.contains(&"oid") && !changed.contains(&"name"), "the user stays: {changed:?}");
        assert_eq!(card.header[2].value, "key-1");
        let verdicts: Vec<Lifeline> = d.messages.iter().filter_map(|m| m.verdict.as_ref()).map(|v| v.at).collect();
        assert_eq!(verdicts, [Lifeline::OrdersMcp, Lifeline::OrdersApi]);
        assert!(d.messages.iter().any(|m| m.to == Lifeline::Sqlite));
        assert_eq!(d.messages.iter().filter(|m| m.timing.is_some()).count(), 2, "orders-api's and orders-mcp's times");
    }

    #[test]
    fn a_refused_forwarded_token_never_reaches_entra_or_the_database() {
        let user = token("8f0c7f6e-mcp", "2.0", "chat-app-id", "Alice");
        let mut turn = obo_turn("Alice");
        let outcome = turn.calls[0].outcome.as_mut().unwrap();
        outcome.is_error = true;
        outcome.summary = "orders-api refused the token: invalid audience".into();
        outcome.hops = vec![
            hop("chat-app", user.clone(), How::SignIn, Decision::Allowed),
            hop("orders-mcp", user, How::Direct, Decision::Allowed),
        ];
        let d = build("t", &turn, &Vec::new(), How::Forwarded);
        assert!(!d.messages.iter().any(|m| m.to == Lifeline::Entra || m.to == Lifeline::Sqlite));
        let at_api = d.messages.iter().find(|m| m.to == Lifeline::OrdersApi).unwrap();
        assert!(at_api.token.as_ref().unwrap().claims.iter().all(|c| !c.changed), "the very same token");
        let verdict = at_api.verdict.as_ref().unwrap();
        assert_eq!(verdict.outcome, Outcome::Denied);
        assert_eq!(verdict.text, "✗ 401: invalid audience");
    }

    /// Agent mode (#20): the slide names the agent where each token does, the blueprint beside the
    /// agent as client at orders-mcp, the agent as prior actor after orders-mcp's On-Behalf-Of.
    #[test]
    fn an_agents_tokens_name_the_agent_on_the_slide() {
        use entra_auth::hop::AgentActor;
        let mut turn = obo_turn("Alice");
        let actor = |named_as| AgentActor { id: "agent-id".into(), blueprint_id: "blueprint-id".into(), named_as };
        let hops = &mut turn.calls[0].outcome.as_mut().unwrap().hops;
        for hop in hops.iter_mut().take(2) {
            hop.token.client_id = "agent-id".into();
            hop.token.agent = Some(actor(AgentNamedAs::Client));
        }
        hops[2].token.agent = Some(actor(AgentNamedAs::PriorActor));
        let names: Names = vec![("agent-id".into(), "Orders Copilot agent".into())];
        let d = build("t", &turn, &names, How::Obo);
        let cards: Vec<&TokenCard> = d.messages.iter().filter_map(|m| m.token.as_ref()).collect();
        let at_mcp = cards.first().unwrap();
        let names_of = |c: &TokenCard| c.claims.iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(&names_of(at_mcp)[4..6], ["azp", "xms_par_app_azp"], "{:?}", names_of(at_mcp));
        assert!(at_mcp.claims[4].value.starts_with("Orders Copilot agent"));
        let at_api = cards.last().unwrap();
        let act = at_api.claims.iter().find(|f| f.name == "act.sub").unwrap();
        assert!(act.value.starts_with("Orders Copilot agent") && act.full == "agent-id", "{act:?}");
        assert!(!at_api.claims.iter().any(|f| f.name == "xms_par_app_azp"), "orders-mcp is no agent");
    }
}
