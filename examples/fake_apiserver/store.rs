//! The object store: every object by resource, namespace and name, one global resourceVersion
//! counter, the history of changes (so a watch from a list's resourceVersion misses nothing)
//! and the counters tests use to prove that a dry run changed nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::resources::Resource;

/// Where an object lives: group, plural, namespace ("" for cluster-scoped), name.
pub type Key = (&'static str, &'static str, String, String);

/// One change, as a watch reports it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub group: &'static str,
    pub plural: &'static str,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

/// One request as the server saw it (for assertions and debugging).
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub user_agent: String,
    pub content_type: String,
    /// The request body as text (protobuf bodies are lossy).
    pub body: String,
}

pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: Vec<Arc<Change>>,
    tx: broadcast::Sender<Arc<Change>>,
    /// Committed write requests by `plural` or `plural/subresource`.
    pub writes: BTreeMap<String, u64>,
    pub requests: Vec<RequestRecord>,
}

/// A fresh random UID in the usual 8-4-4-4-12 form.
pub fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    // A failing OS RNG leaves zeros; the counter-free fallback still differs per call via time.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Now, as Kubernetes writes timestamps (RFC 3339, whole seconds, `Z`).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Store {
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(4096);
        Store {
            objects: BTreeMap::new(),
            rv: 1000,
            history: Vec::new(),
            tx,
            writes: BTreeMap::new(),
            requests: Vec::new(),
        }
    }

    /// The current (latest) resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn key(r: &Resource, ns: &str, name: &str) -> Key {
        let ns = if r.namespaced { ns } else { "" };
        (r.group, r.plural, ns.to_string(), name.to_string())
    }

    pub fn get(&self, r: &Resource, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&Store::key(r, ns, name))
    }

    /// All objects of a resource, in one namespace or (None) in all.
    pub fn list(&self, r: &Resource, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), _)| {
                *g == r.group && *p == r.plural && ns.is_none_or(|want| !r.namespaced || want == n)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every object (for garbage collection by owner).
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    /// Stores an object (created or replaced), giving it the next resourceVersion, and tells
    /// watchers. Returns the stored object.
    pub fn put(&mut self, r: &'static Resource, mut obj: Value) -> Value {
        self.rv += 1;
        let rv = self.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let key = Store::key(r, &ns, &name);
        let kind = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.objects.insert(key, obj.clone());
        self.record(r, ns, kind, obj.clone(), rv);
        obj
    }

    /// Removes an object; watchers see DELETED with a fresh resourceVersion.
    pub fn remove(&mut self, r: &'static Resource, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self.objects.remove(&Store::key(r, ns, name))?;
        self.rv += 1;
        let rv = self.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(r, ns.to_string(), "DELETED", obj.clone(), rv);
        Some(obj)
    }

    fn record(
        &mut self,
        r: &'static Resource,
        ns: String,
        kind: &'static str,
        object: Value,
        rv: u64,
    ) {
        let change = Arc::new(Change {
            rv,
            group: r.group,
            plural: r.plural,
            namespace: if r.namespaced { ns } else { String::new() },
            kind,
            object,
        });
        self.history.push(change.clone());
        // No receivers is normal (nobody watching).
        let _ = self.tx.send(change);
    }

    /// Changes after `rv` plus a receiver for later ones, taken atomically (under the store
    /// lock) so a watch neither misses nor repeats a change.
    pub fn subscribe_after(&self, rv: u64) -> (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>) {
        let past = self.history.iter().filter(|c| c.rv > rv).cloned().collect();
        (past, self.tx.subscribe())
    }

    /// The objects of a resource as they were at resourceVersion `rv` (from the history,
    /// which starts empty and records every change).
    pub fn objects_at(&self, rv: u64, r: &Resource) -> Vec<Value> {
        let mut state: BTreeMap<(String, String), Option<&Value>> = BTreeMap::new();
        for c in self
            .history
            .iter()
            .filter(|c| c.rv <= rv && c.group == r.group && c.plural == r.plural)
        {
            let name = c
                .object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let value = (c.kind != "DELETED").then_some(&c.object);
            state.insert((c.namespace.clone(), name), value);
        }
        state.into_values().flatten().cloned().collect()
    }

    pub fn count_write(&mut self, what: &str) {
        *self.writes.entry(what.to_string()).or_insert(0) += 1;
    }
}
