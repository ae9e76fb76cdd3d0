//! What the fake cloud holds: its configuration (faults to inject included) and the directory
//! (Graph objects, container apps) with the log of writes tests inspect.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `400` to every write after the limit.
    Refuse,
    /// Never answer writes after the limit: the run is stuck there until killed.
    Hang,
    /// Make the next write, then never answer: killed after the server acted, before the
    /// client heard.
    HangAfterWrite,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tenant_id: String,
    pub me: String,
    pub admin: bool,
    pub page_size: usize,
    /// Every n-th request is throttled.
    pub throttle_every: Option<usize>,
    pub retry_after_secs: u64,
    /// Requests addressing a new object that fail before it is visible.
    pub lag: usize,
    pub fail_after_writes: Option<(usize, Fault)>,
}

impl Config {
    pub fn new(tenant_id: &str) -> Self {
        Config {
            tenant_id: tenant_id.to_string(),
            me: uuid::Uuid::new_v4().to_string(),
            admin: true,
            page_size: 2,
            throttle_every: None,
            retry_after_secs: 0,
            lag: 0,
            fail_after_writes: None,
        }
    }
}

#[derive(Default)]
pub struct Directory {
    pub applications: BTreeMap<String, Value>,
    pub deleted: BTreeMap<String, Value>,
    pub service_principals: BTreeMap<String, Value>,
    /// Application object id -> its credentials.
    pub federated: BTreeMap<String, Vec<Value>>,
    pub grants: BTreeMap<String, Value>,
    pub assignments: BTreeMap<String, Value>,
    pub container_apps: BTreeMap<String, Value>,
    /// ARM operation id -> polls still answered `InProgress`.
    pub(super) operations: HashMap<String, u32>,
    /// Id (object id, app id) -> requests still answered as if it did not exist.
    pub(super) lagging: HashMap<String, usize>,
    /// Successful writes: "METHOD path".
    pub writes: Vec<String>,
    pub requests: usize,
    pub throttled: usize,
    pub lag_answers: usize,
}

pub struct Shared {
    pub config: Mutex<Config>,
    pub dir: Mutex<Directory>,
    pub hung: Notify,
    /// The server's own URL, for `@odata.nextLink` and operation status URLs.
    pub(super) base: Mutex<String>,
}

impl Directory {
    /// Whether `id` is still replicating: answers one more request as missing.
    pub fn lags(&mut self, id: &str) -> bool {
        match self.lagging.get_mut(id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                self.lag_answers += 1;
                true
            }
            _ => false,
        }
    }
}
