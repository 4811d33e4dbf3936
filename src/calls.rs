//! The call graph of runbooks: which runbooks each one runs through `runbook` steps. One
//! graph serves lint's loop check (N002), the run's preload of every runbook it can reach
//! and the nesting limit, so they cannot disagree.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::library::Library;
use crate::model::Runbook;
use crate::source::{SourceFile, Span};

/// Deepest chain of nested runbooks a run may have (`a` runs `b` runs `c`: depth 3).
pub const MAX_NESTING: usize = 16;

/// A `runbook` step's call, written with a literal name.
#[derive(Clone, Debug)]
pub struct Call {
    pub callee: String,
    /// The name argument, in the caller's file.
    pub span: Span,
    pub file: Arc<SourceFile>,
}

/// Runbook name → the calls its steps make.
#[derive(Debug, Default)]
pub struct CallGraph {
    calls: BTreeMap<String, Vec<Call>>,
}

/// The calls a runbook's steps make (computed names are not followed: lint and prepare
/// refuse them where it matters).
pub fn calls_of(runbook: &Runbook) -> Vec<Call> {
    runbook
        .steps
        .iter()
        .filter_map(|s| {
            let arg = s.action.action.called_runbook(&s.action.args)?;
            match arg.value.literal()? {
                serde_json::Value::String(callee) => Some(Call {
                    callee,
                    span: arg.value.span(),
                    file: runbook.file.clone(),
                }),
                _ => None,
            }
        })
        .collect()
}

impl CallGraph {
    /// The graph reachable from `roots`, following calls through the library (each file
    /// parsed once, through its cache).
    pub fn reachable(library: &Library, roots: &[Arc<Runbook>]) -> CallGraph {
        let mut calls: BTreeMap<String, Vec<Call>> = BTreeMap::new();
        for rb in roots {
            calls.insert(rb.name.clone(), calls_of(rb));
        }
        let mut queue: Vec<String> = calls.values().flatten().map(|c| c.callee.clone()).collect();
        while let Some(name) = queue.pop() {
            if calls.contains_key(&name) {
                continue;
            }
            let called = library
                .resolve(&name)
                .ok()
                .and_then(|p| library.parsed(&p).loaded.clone())
                .map(|(rb, _)| calls_of(&rb))
                .unwrap_or_default();
            queue.extend(called.iter().map(|c| c.callee.clone()));
            calls.insert(name, called);
        }
        CallGraph { calls }
    }

    pub fn calls(&self, name: &str) -> &[Call] {
        self.calls.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every runbook reachable from `root` (without it), each once.
    pub fn below(&self, root: &str) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut queue = vec![root.to_string()];
        while let Some(n) = queue.pop() {
            for c in self.calls(&n) {
                if c.callee != root && !seen.contains(&c.callee) {
                    seen.push(c.callee.clone());
                    queue.push(c.callee.clone());
                }
            }
        }
        seen
    }

    /// The longest chain of runbooks starting at `root` (1: it calls none). Loops are
    /// [`loops`](Self::loops)' business; here a loop ends the chain.
    pub fn depth(&self, root: &str) -> usize {
        fn walk(g: &CallGraph, n: &str, on_path: &mut Vec<String>) -> usize {
            on_path.push(n.to_string());
            let mut deepest = 0;
            for c in g.calls(n) {
                if !on_path.contains(&c.callee) {
                    deepest = deepest.max(walk(g, &c.callee, on_path));
                }
            }
            on_path.pop();
            deepest + 1
        }
        walk(self, root, &mut Vec::new())
    }

    /// Every loop through one of `starts`, each reported once: the chain
    /// (`a → b → a`) and the call to point at (the first one of the loop made from a
    /// runbook in `starts`).
    pub fn loops(&self, starts: &HashSet<String>) -> Vec<(Vec<String>, Call)> {
        let mut found = Vec::new();
        let mut reported: HashSet<Vec<String>> = HashSet::new();
        for start in self.calls.keys().filter(|k| starts.contains(*k)) {
            // Depth-first along calls; `path[k]` was left through `taken[k]`.
            let mut path: Vec<String> = vec![start.clone()];
            let mut next: Vec<usize> = vec![0];
            let mut taken: Vec<&Call> = Vec::new();
            let mut done: HashSet<&str> = HashSet::new();
            while let (Some(node), Some(edge)) = (path.last().cloned(), next.last().copied()) {
                let edges = self.calls(&node);
                let Some(call) = edges.get(edge) else {
                    done.insert(
                        self.calls
                            .get_key_value(&node)
                            .map_or("", |(k, _)| k.as_str()),
                    );
                    path.pop();
                    next.pop();
                    taken.pop();
                    continue;
                };
                if let Some(n) = next.last_mut() {
                    *n += 1;
                }
                let target = &call.callee;
                if let Some(pos) = path.iter().position(|p| p == target) {
                    let mut members: Vec<String> = path[pos..].to_vec();
                    members.sort();
                    if reported.insert(members) {
                        let mut chain: Vec<String> = path[pos..].to_vec();
                        chain.push(target.clone());
                        let mut edges_in_loop: Vec<&Call> = taken[pos..].to_vec();
                        edges_in_loop.push(call);
                        let at = path[pos..]
                            .iter()
                            .zip(&edges_in_loop)
                            .find(|(n, _)| starts.contains(*n))
                            .map_or(call, |(_, c)| *c);
                        found.push((chain, at.clone()));
                    }
                } else if !done.contains(target.as_str()) {
                    path.push(target.clone());
                    next.push(0);
                    taken.push(call);
                }
            }
        }
        found
    }
}
