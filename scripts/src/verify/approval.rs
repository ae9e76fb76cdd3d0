//! chat-app asks before it acts (local stack, offline planner or any model that proposes the
//! cancel): "Cancel ORD-003" pauses at an approval; an answer forged for other arguments is
//! refused; Deny ends the call unrun.

use std::time::Duration;

use entra_auth::acquire::describe;
use serde_json::{Value, json};
use url::Url;

use super::chat_session::ChatSession;
use super::http::Http;
use super::report::{Check, Report};

const WAITS: &str = "a state-changing tool call waits for the user's approval";
const FORGED: &str = "an approval forged for other arguments is refused (409)";
const DENIED: &str = "a denied call does not run";

pub async fn check(http: &Http, base: &Url, session: &ChatSession, report: &mut Report) {
    match run(http, base, session).await {
        Ok((forged, denied)) => {
            report.record(WAITS, Ok(()), |_| "cancel_order paused".into());
            report.record(FORGED, forged, |s| s.clone());
            report.record(DENIED, denied, |s| s.clone());
        }
        Err(e) => {
            report.record::<()>(WAITS, Err(e), |_| String::new());
        }
    }
}

type Outcome = (Check<String>, Check<String>);

async fn run(http: &Http, base: &Url, session: &ChatSession) -> Check<Outcome> {
    let origin = base.origin().ascii_serialization();
    let post = |path: &str, form: Vec<(&str, String)>| {
        let url = format!("{}{path}", base.as_str().trim_end_matches('/'));
        http.client().post(url).header("cookie", &session.cookie).header("origin", &origin).form(&form).send()
    };
    let sent = post("/api/chat/send", vec![("text", "Cancel ORD-003".into())]).await.map_err(describe)?;
    let turn: String = sent.json().await.map_err(describe)?;
    let events_url = format!("{}/api/chat/turns/{turn}/events", base.as_str().trim_end_matches('/'));
    let mut events = http.client().get(events_url).header("cookie", &session.cookie).send().await.map_err(describe)?;
    let (mut buffer, mut seen) = (String::new(), Vec::<Value>::new());
    let mut outcome = None;
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(30), events.chunk())
            .await
            .map_err(|_| "the turn's events stalled for 30 s".to_string())?
            .map_err(describe)?;
        let Some(chunk) = chunk else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let data: String = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            let Ok(event) = serde_json::from_str::<Value>(&data) else { continue };
            if event["type"] == "tool_result" && event["summary"].as_str().is_some_and(|s| !s.starts_with("Declined")) {
                let tool = seen.iter().rev().find(|e| e["type"] == "tool_call").map(|e| e["name"].clone());
                if tool == Some(json!("cancel_order")) {
                    return Err(format!("cancel_order ran without an approval: {}", event["summary"]));
                }
            }
            if event["type"] == "approval_required" {
                let id = event["id"].as_str().unwrap_or_default().to_string();
                let call = seen.iter().rev().find(|e| e["type"] == "tool_call" && e["id"] == event["id"]);
                let tool = call.and_then(|c| c["name"].as_str()).unwrap_or_default().to_string();
                let arguments = call.map(|c| c["arguments"].to_string()).unwrap_or_default();
                let answer = |arguments: String, approve: &str| {
                    vec![
                        ("turn", event["approval"]["turn"].as_str().unwrap_or_default().to_string()),
                        ("call", id.clone()),
                        ("tool", tool.clone()),
                        ("arguments", arguments),
                        ("approve", approve.to_string()),
                    ]
                };
                let forged = post("/api/chat/answer", answer(json!({"id": "ORD-999"}).to_string(), "true"))
                    .await
                    .map_err(describe)
                    .and_then(
                        |r| if r.status() == 409 { Ok("409".to_string()) } else { Err(format!("{}", r.status())) },
                    );
                let deny = post("/api/chat/answer", answer(arguments, "false")).await.map_err(describe)?;
                if !deny.status().is_success() {
                    return Err(format!("Deny answered {}", deny.status()));
                }
                outcome = Some(forged);
            }
            if event["type"] == "tool_result"
                && event["summary"].as_str().is_some_and(|s| s.starts_with("Declined"))
                && let Some(forged) = outcome.take()
            {
                return Ok((forged, Ok(event["summary"].as_str().unwrap_or_default().to_string())));
            }
            seen.push(event);
        }
    }
    Err(format!("the turn ended without asking: {} event(s)", seen.len()))
}
