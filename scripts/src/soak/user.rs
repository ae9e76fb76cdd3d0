//! One simulated user of chat-app: signs in through the emulator's login form like a browser,
//! then, until the run ends, loads pages, asks the agent for its orders, and has it create an
//! order and cancel it (approving each state-changing call, as the person would). Every order
//! it is shown must be its own (the admin sees everyone's); what it sees when something fails is
//! recorded as the message a person would have read.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use url::Url;

use super::browser::{Browser, Page};
use super::record::Recorder;

/// A demo user of the manifest.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub password: String,
    pub oid: String,
    /// Sees every customer's orders (`Orders.Admin`): exempt from the leak check.
    pub admin: bool,
}

pub struct User {
    pub identity: Identity,
    pub browser: Browser,
    pub chat_app: Url,
    pub recorder: Recorder,
    signed_in: bool,
}

/// What a chat turn showed.
#[derive(Default)]
pub struct Turn {
    pub text: String,
    /// Every `tool_result` summary.
    pub results: Vec<String>,
    pub failed: bool,
}

impl User {
    pub fn new(identity: Identity, chat_app: Url, recorder: Recorder) -> anyhow::Result<User> {
        Ok(User { identity, browser: Browser::new(recorder.clone())?, chat_app, recorder, signed_in: false })
    }

    /// The same person in a new browser (no cookies), not signed in.
    pub fn another(&self) -> anyhow::Result<User> {
        User::new(self.identity.clone(), self.chat_app.clone(), self.recorder.clone())
    }

    /// Runs the user's loop until `until`. `think` spaces the user's actions.
    pub async fn run(mut self, until: Instant, think: Duration) {
        let mut step = 0usize;
        while Instant::now() < until {
            if !self.signed_in {
                match self.sign_in().await {
                    Ok(()) => self.signed_in = true,
                    Err(message) => self.recorder.message(&format!("sign-in: {message}")),
                }
            } else {
                match step % 4 {
                    0 => self.page("/chat", "GET /chat").await,
                    1 => self.page("/orders", "GET /orders").await,
                    2 => {
                        self.turn("show my orders").await;
                    }
                    _ => self.create_and_cancel().await,
                }
                step += 1;
            }
            tokio::time::sleep(think).await;
        }
    }

    fn url(&self, path: &str) -> Url {
        self.chat_app.join(path).unwrap_or_else(|_| self.chat_app.clone())
    }

    /// chat-app's sign-in → the emulator's login form → its callback → back to `/chat`.
    pub async fn sign_in(&mut self) -> Result<(), String> {
        let callback = self.authorize().await?;
        self.finish_sign_in(&callback).await
    }

    /// The first half of a sign-in: chat-app sends the browser to the emulator, which signs the
    /// user in and sends it back: the callback URL, not yet followed.
    pub async fn authorize(&mut self) -> Result<Url, String> {
        let start = self.url("/auth/sign-in?return_to=%2Fchat");
        let page = self.browser.fetch("GET /auth/sign-in", &start, self.browser.request(Method::GET, &start)).await?;
        let authorize = redirect(&start, &page)?;
        let form_page = self
            .browser
            .fetch("GET emulator authorize", &authorize, self.browser.request(Method::GET, &authorize))
            .await?;
        let callback = match form_page.status {
            // Signed in at the emulator already (its session cookie): straight back.
            302 | 303 => redirect(&authorize, &form_page)?,
            200 => {
                let (action, mut fields) = login_form(&authorize, &form_page.body)?;
                fields.push(("login".into(), self.identity.name.clone()));
                fields.push(("password".into(), self.identity.password.clone()));
                let request = self.browser.request(Method::POST, &action).form(&fields);
                let login = self.browser.fetch("POST emulator login", &action, request).await?;
                redirect(&action, &login)?
            }
            status => return Err(format!("the emulator's sign-in page answered {status}")),
        };
        Ok(callback)
    }

    /// The second half: chat-app's callback redeems the code and lands the user on `/chat`;
    /// otherwise the page's notice is the error.
    pub async fn finish_sign_in(&mut self, callback: &Url) -> Result<(), String> {
        let back =
            self.browser.fetch("GET /auth/callback", callback, self.browser.request(Method::GET, callback)).await?;
        if back.status != 302 && back.status != 303 {
            let notice = alert(&back.body).or_else(|| title(&back.body)).unwrap_or_default();
            return Err(format!("{} {notice}", back.status));
        }
        let landed = redirect(callback, &back)?;
        if landed.path() != "/chat" {
            return Err(format!("sign-in ended at {landed}"));
        }
        Ok(())
    }

    /// An SSR page: complete, and every order on it this user's own.
    async fn page(&mut self, path: &str, route: &'static str) {
        let url = self.url(path);
        match self.browser.fetch(route, &url, self.browser.request(Method::GET, &url)).await {
            Ok(page) if page.status == 200 => {
                if let Some(notice) = alert(&page.body) {
                    self.recorder.message(&format!("{path}: {notice}"));
                }
                // Orders are data in the orders table; elsewhere ids are examples ("Cancel
                // ORD-003") or what the user typed.
                if let Some(table) = table(&page.body) {
                    self.check_shown(table);
                }
            }
            Ok(page) if page.location.as_deref().is_some_and(|l| l.contains("/auth/sign-in")) => {
                self.recorder.message(&format!("{path}: sent to sign in again"));
                self.signed_in = false;
            }
            Ok(page) => {
                let notice = alert(&page.body).or_else(|| title(&page.body)).unwrap_or_default();
                self.recorder.message(&format!("{path}: {} {notice}", page.status));
            }
            Err(e) => self.recorder.message(&format!("{path}: {e}")),
        }
    }

    /// The agent creates an order (approved), then cancels it (approved).
    async fn create_and_cancel(&mut self) {
        let created = self.turn("order 1 soak widget").await;
        let Some(id) = created.results.iter().find_map(|r| order_ids(r).into_iter().next()) else { return };
        self.turn(&format!("cancel {id}")).await;
    }

    /// Sends `text`, reads the turn's events to the end, approves what asks for approval.
    pub async fn turn(&mut self, text: &str) -> Turn {
        let mut turn = Turn::default();
        let origin = self.chat_app.origin().ascii_serialization();
        let send = self.url("/api/chat/send");
        let request = self.browser.request(Method::POST, &send).header("origin", &origin).form(&[("text", text)]);
        let id = match self.browser.fetch("POST /api/chat/send", &send, request).await {
            Ok(page) if page.status == 200 => serde_json::from_str::<String>(&page.body).ok(),
            Ok(page) => {
                if page.status == 401 {
                    self.signed_in = false;
                }
                self.recorder.message(&format!("chat: {} {}", page.status, server_fn_error(&page.body)));
                None
            }
            Err(e) => {
                self.recorder.message(&format!("chat: {e}"));
                None
            }
        };
        let Some(id) = id else {
            turn.failed = true;
            return turn;
        };
        let events = self.url(&format!("/api/chat/turns/{id}/events"));
        let started = Instant::now();
        let result = self.read_events(&events, &origin, &mut turn).await;
        self.browser.finish("GET turn events (SSE)", started, &result);
        if let Err(e) = result {
            turn.failed = true;
            self.recorder.message(&format!("chat stream: {}", entra_auth::acquire::describe(e)));
        }
        // The tools' results are the orders the user was shown (the reply may quote the
        // planner's examples).
        self.check_shown(&turn.results.join("\n"));
        turn
    }

    async fn read_events(&self, url: &Url, origin: &str, turn: &mut Turn) -> Result<u16, reqwest::Error> {
        let mut response = self.browser.open(url, self.browser.request(Method::GET, url)).await?;
        let status = response.status().as_u16();
        let (mut buffer, mut calls) = (String::new(), Vec::<Value>::new());
        while let Some(chunk) = response.chunk().await? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let data: String = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                let Ok(event) = serde_json::from_str::<Value>(&data) else { continue };
                match event["type"].as_str() {
                    Some("text") => turn.text.push_str(event["delta"].as_str().unwrap_or_default()),
                    Some("tool_call") => calls.push(event),
                    Some("tool_result") => {
                        let summary = event["summary"].as_str().unwrap_or_default().to_string();
                        if event["is_error"] == true {
                            turn.failed = true;
                            self.recorder.message(&format!("tool: {summary}"));
                        }
                        turn.results.push(summary);
                    }
                    Some("approval_required") => {
                        let call = calls.iter().rev().find(|c| c["id"] == event["id"]).cloned().unwrap_or_default();
                        self.approve(&event, &call, origin).await;
                    }
                    Some("error") => {
                        turn.failed = true;
                        self.recorder.message(&format!("chat: {}", event["message"].as_str().unwrap_or_default()));
                    }
                    _ => {}
                }
            }
        }
        Ok(status)
    }

    /// The person's yes to the call `event` waits on, naming the call completely.
    async fn approve(&self, event: &Value, call: &Value, origin: &str) {
        let url = self.url("/api/chat/answer");
        let form = [
            ("turn", event["approval"]["turn"].as_str().unwrap_or_default().to_string()),
            ("call", event["id"].as_str().unwrap_or_default().to_string()),
            ("tool", call["name"].as_str().unwrap_or_default().to_string()),
            ("arguments", call["arguments"].to_string()),
            ("approve", "true".to_string()),
        ];
        let request = self.browser.request(Method::POST, &url).header("origin", origin).form(&form);
        match self.browser.fetch("POST /api/chat/answer", &url, request).await {
            Ok(page) if page.status == 200 => {}
            Ok(page) => self.recorder.message(&format!("approval: {} {}", page.status, server_fn_error(&page.body))),
            Err(e) => self.recorder.message(&format!("approval: {e}")),
        }
    }

    /// Records every order id in `text` as shown to this user (checked against the database at
    /// the end: an id that is not the user's own is a leak).
    fn check_shown(&self, text: &str) {
        if self.identity.admin {
            return;
        }
        for id in order_ids(text) {
            self.recorder.shown(&self.identity.oid, &id);
        }
    }
}

/// The absolute target of a redirect.
fn redirect(from: &Url, page: &Page) -> Result<Url, String> {
    let location = page.location.as_deref().ok_or_else(|| format!("{} without a redirect", page.status))?;
    from.join(location).map_err(|e| format!("redirect to {location}: {e}"))
}

/// The emulator's username-and-password form: its action and the fields it carries.
fn login_form(page_url: &Url, html: &str) -> Result<(Url, Vec<(String, String)>), String> {
    let at = html.find("id=\"credentials\"").ok_or("no sign-in form on the emulator's page")?;
    let form_start = html[..at].rfind("<form").ok_or("no <form>")?;
    let action = attribute(&html[form_start..at], "action").ok_or("the form has no action")?;
    let action = page_url.join(&action).map_err(|e| e.to_string())?;
    let end = html[at..].find("</form>").map_or(html.len(), |e| at + e);
    let fields = html[at..end]
        .split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect();
    Ok((action, fields))
}

/// `name="value"` in an HTML tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The page's notice (title and detail): what the person is told went wrong. Failures kept in
/// the conversation from earlier turns are history, not this page's state.
fn alert(html: &str) -> Option<String> {
    let at = html.find("class=\"notice\" role=\"alert\"")?;
    let start = html[at..].find('>')? + at + 1;
    let end = html[start..].find("</section>")? + start;
    let text = strip_tags(&html[start..end].replace("</h2>", ": "));
    (!text.trim().is_empty()).then(|| unescape(text.trim()))
}

fn table(html: &str) -> Option<&str> {
    let start = html.find("<table")?;
    let end = html[start..].find("</table>")? + start;
    Some(&html[start..end])
}

fn title(html: &str) -> Option<String> {
    let start = html.find("<title>")? + 7;
    let end = html[start..].find("</title>")? + start;
    Some(unescape(&html[start..end]))
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A server function's error body is its message as text.
fn server_fn_error(body: &str) -> String {
    body.chars().take(160).collect()
}

/// Every `ORD-<digits>` in `text`.
pub fn order_ids(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("ORD-") {
        let digits: String = rest[at + 4..].chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            ids.push(format!("ORD-{digits}"));
        }
        rest = &rest[at + 4..];
    }
    ids.sort();
    ids.dedup();
    ids
}
