//! The browser side of a turn: its events arrive over Server-Sent Events (`EventSource`).

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Event, EventSource, MessageEvent};

use crate::transcript::TurnEvent;

/// The stream being followed; replacing it drops (and closes) the previous one.
struct Stream {
    source: EventSource,
    _handler: Closure<dyn FnMut(Event)>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.source.close();
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Stream>> = const { RefCell::new(None) };
}

/// Follows turn `turn`, calling `on_event` for each event until `done` or an error.
pub fn follow(turn: &str, on_event: impl Fn(TurnEvent) + 'static) {
    CURRENT.with(|c| c.borrow_mut().take());
    let lost = || TurnEvent::Error {
        message:
            "The connection to chat-app was lost before the reply finished. Reload the page to see what was saved."
                .into(),
        sign_in: false,
    };
    // Turn ids are UUIDs; anything else never reaches a URL.
    if turn.is_empty() || !turn.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        on_event(lost());
        return;
    }
    let source = match EventSource::new(&format!("/api/chat/turns/{turn}/events")) {
        Ok(source) => source,
        Err(_) => {
            on_event(lost());
            return;
        }
    };
    let closer = source.clone();
    let handler = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
        // The browser's own `error` event (connection failure) carries no data; ours do.
        let event = event
            .dyn_ref::<MessageEvent>()
            .and_then(|m| m.data().as_string())
            .and_then(|data| serde_json::from_str::<TurnEvent>(&data).ok())
            .unwrap_or_else(lost);
        if matches!(event, TurnEvent::Done | TurnEvent::Error { .. }) {
            // Otherwise EventSource reconnects when the server ends the stream.
            closer.close();
        }
        on_event(event);
    });
    for name in TurnEvent::NAMES {
        let _ = source.add_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(Stream { source, _handler: handler }));
}

/// A full-page navigation (to a server route such as sign-in).
pub fn navigate(url: &str) {
    let _ = window().location().set_href(url);
}

/// Keeps the newest message in view.
pub fn scroll_to_end(log: NodeRef<leptos::html::Div>) {
    if let Some(el) = log.get_untracked() {
        el.set_scroll_top(el.scroll_height());
    }
}
