//! Turns in progress: the events of each turn started and not yet streamed to the browser, and
//! which conversations have a turn running (one at a time each: in this process, or, with a
//! shared store, across every replica). The events stay in the process that runs the turn, so
//! with several replicas the stream request must reach that replica (session affinity).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::redis::{Lease, Redis};
use crate::transcript::TurnEvent;

/// A turn whose events nobody came for within this time is dropped (the turn still completes
/// and is saved).
const UNCLAIMED: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Turns {
    pending: Mutex<HashMap<String, Pending>>,
    running: Mutex<HashSet<String>>,
    /// How to end a turn this process runs, by its conversation and by the session that
    /// started it.
    ending: Mutex<HashMap<Owner, (u64, CancellationToken)>>,
    next_ending: AtomicU64,
    /// Replicas share which conversations have a turn running through this.
    shared: Option<Redis>,
}

/// What a running turn can be ended by. Both, because each can change under a turn: a sign-in
/// for step-up cycles the session id, and a turn's start may make a new conversation that its
/// session has not saved yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Owner {
    Conversation(String),
    Session(String),
}

/// How a running turn learns that its user signed out: it holds their access token, and must
/// not go on using it (a turn can wait minutes for an approval). Registered by
/// [`Turns::ending`], gone when dropped.
pub struct Ending {
    turns: Arc<Turns>,
    owners: [Owner; 2],
    id: u64,
    token: CancellationToken,
}

impl Ending {
    /// Resolves when the conversation's user signs out.
    pub async fn signed_out(&self) {
        self.token.cancelled().await;
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        let mut map = self.turns.ending.lock().unwrap_or_else(|p| p.into_inner());
        for owner in &self.owners {
            if map.get(owner).is_some_and(|(id, _)| *id == self.id) {
                map.remove(owner);
            }
        }
    }
}

struct Pending {
    conversation: String,
    events: mpsc::UnboundedReceiver<TurnEvent>,
    created: Instant,
}

/// Marks a conversation's turn as in progress until dropped, however the turn task ends.
pub enum Running {
    Here(RunningHere),
    Shared(Lease),
}

impl Running {
    /// Ends the mark now, before the turn reports that it is done (so the next message finds the
    /// conversation free).
    pub async fn end(self) {
        match self {
            Running::Here(here) => drop(here),
            Running::Shared(lease) => lease.release().await,
        }
    }
}

pub struct RunningHere {
    turns: Arc<Turns>,
    conversation: String,
}

impl Drop for RunningHere {
    fn drop(&mut self) {
        self.turns.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.conversation);
    }
}

impl Turns {
    /// `shared`: the store replicas share, if any.
    pub fn new(shared: Option<Redis>) -> Self {
        Turns { shared, ..Turns::default() }
    }

    /// Marks `conversation` as having a turn in progress; `None` if it already has one.
    pub async fn begin(self: &Arc<Self>, conversation: &str) -> anyhow::Result<Option<Running>> {
        if let Some(shared) = &self.shared {
            return Ok(shared.lease_turn(conversation).await?.map(Running::Shared));
        }
        let started = self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(conversation.to_string());
        Ok(started.then(|| Running::Here(RunningHere { turns: self.clone(), conversation: conversation.to_string() })))
    }

    /// Lets [`Turns::end`] reach the turn now running for `conversation`, started by `session`
    /// (call it after [`Turns::begin`]).
    pub fn ending(self: &Arc<Self>, conversation: &str, session: &str) -> Ending {
        let id = self.next_ending.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let owners = [Owner::Conversation(conversation.to_string()), Owner::Session(session.to_string())];
        let mut map = self.ending.lock().unwrap_or_else(|p| p.into_inner());
        for owner in &owners {
            map.insert(owner.clone(), (id, token.clone()));
        }
        Ending { turns: self.clone(), owners, id, token }
    }

    /// Ends the turns running in this process for `session` or `conversation`: the user signed
    /// out. (With several replicas, session affinity puts the sign-out on the replica running
    /// the turn.)
    pub fn end(&self, session: &str, conversation: Option<&str>) {
        let mut map = self.ending.lock().unwrap_or_else(|p| p.into_inner());
        let owners = conversation.map(|c| Owner::Conversation(c.to_string())).into_iter();
        for owner in owners.chain([Owner::Session(session.to_string())]) {
            if let Some((_, token)) = map.remove(&owner) {
                token.cancel();
            }
        }
    }

    /// Keeps the events of `turn` (of `conversation`) until the browser comes for them.
    pub fn register(&self, turn: String, conversation: String, events: mpsc::UnboundedReceiver<TurnEvent>) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.created.elapsed() < UNCLAIMED);
        map.insert(turn, Pending { conversation, events, created: Instant::now() });
    }

    /// The events of `turn`, if it belongs to `conversation` and nobody took them yet.
    pub fn take(&self, turn: &str, conversation: &str) -> Option<mpsc::UnboundedReceiver<TurnEvent>> {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(turn).is_some_and(|p| p.conversation == conversation) {
            return map.remove(turn).map(|p| p.events);
        }
        None
    }
}
