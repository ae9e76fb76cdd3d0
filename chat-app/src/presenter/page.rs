//! The presenter view's HTML: the turn's sequence diagram (inline SVG), the downloads, and, when
//! the passthrough demonstration is configured, the replay button and its result beside the
//! On-Behalf-Of call that worked. Rendered on the server only: nothing here hydrates.

use leptos::prelude::*;

use super::sequence::{Diagram, Outcome};
use crate::server_page;
use crate::transcript::ToolCall;

/// What the page shows.
pub struct PresenterPage<'a> {
    pub turn: &'a str,
    pub question: Option<String>,
    /// The diagram, and its SVG.
    pub diagram: (&'a Diagram, String),
    /// Calls that may be replayed (the button is offered only when the demonstration is set up).
    pub replayable: Vec<&'a ToolCall>,
    pub replay: Option<ReplayView>,
}

/// A replay's result, next to what happened.
pub struct ReplayView {
    pub tool: String,
    pub reason: String,
    pub original: Diagram,
    pub replayed: Diagram,
    pub replayed_svg: String,
}

pub fn render(page: PresenterPage<'_>) -> String {
    let turn = page.turn.to_string();
    let (diagram, svg) = page.diagram;
    let title = diagram.title.clone();
    let question = page.question.map(|q| view! { <p class="presenter-question">"“" {q} "”"</p> });
    let replay_forms = page
        .replayable
        .iter()
        .map(|call| {
            let action = format!("/trace/{turn}/replay");
            view! {
                <form method="post" action=action class="replay-form">
                    <input type="hidden" name="call" value=call.id.clone() />
                    <button type="submit" class="button primary" data-testid="replay">
                        {format!("Replay {} with the user's token forwarded", call.name)}
                    </button>
                </form>
            }
        })
        .collect_view();
    let replay = page.replay.map(|r| {
        view! {
            <section class="replay" aria-labelledby="replay-title" data-testid="replay-result">
                <h2 id="replay-title">{format!("{}: On-Behalf-Of, then the token forwarded", r.tool)}</h2>
                <p class="replay-reason" data-testid="replay-reason">{r.reason}</p>
                <div class="compare">
                    <Path title="On-Behalf-Of (what the turn did)" diagram=r.original class="path obo" />
                    <Path title="Forwarded (the replay)" diagram=r.replayed class="path forwarded" />
                </div>
                <figure class="diagram" data-testid="replay-diagram" inner_html=r.replayed_svg></figure>
            </section>
        }
    });
    let svg_href = format!("/trace/{turn}/diagram.svg");
    let mermaid_href = format!("/trace/{turn}/diagram.mmd");
    let nav = view! {
        <nav>
            <a href="/chat">"Back to the chat"</a>
        </nav>
    };
    server_page::render(&format!("{title} · Presenter view"), Some("presenter-body"), nav, move || {
        view! {
            <main id="main" class="presenter">
                <div class="presenter-head">
                    <h1>"One turn, every hop"</h1>
                    {question}
                    <div class="downloads">
                        <a class="button" href=svg_href download="" data-testid="download-svg">
                            "Download SVG"
                        </a>
                        <a class="button" href=mermaid_href download="" data-testid="download-mermaid">
                            "Download Mermaid"
                        </a>
                    </div>
                    {replay_forms}
                </div>
                {replay}
                <figure class="diagram" data-testid="diagram" inner_html=svg></figure>
            </main>
        }
    })
}

/// One path through the hops, as verdicts in order.
#[component]
fn Path(title: &'static str, diagram: Diagram, class: &'static str) -> impl IntoView {
    let steps = diagram
        .messages
        .into_iter()
        .filter_map(|m| m.verdict)
        .map(|v| {
            let class = match v.outcome {
                Outcome::Allowed => "verdict allowed",
                Outcome::Denied => "verdict denied",
                Outcome::Refused => "verdict refused",
            };
            view! { <li class=class>{v.text}</li> }
        })
        .collect_view();
    view! {
        <div class=class>
            <h3>{title}</h3>
            <ol>{steps}</ol>
        </div>
    }
}
