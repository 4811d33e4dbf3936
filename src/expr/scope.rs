//! The names an expression can see: `params`, `vars`, `run`, `steps` and, in a step's
//! own assertions, `outputs` plus each output as a top-level name.

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

use super::{Ref, Seg};

/// Evaluation scope. Cheap to build: every field is a shared minijinja value, and
/// `steps` is usually a live view of the run's state rather than a copy.
#[derive(Debug, Clone)]
pub struct Scope {
    pub params: Value,
    pub vars: Value,
    pub run: Value,
    pub steps: Value,
    /// The step's own outputs, for `expect`, `warn_if`, `fail_if`, `capture`, `retry.until`.
    pub outputs: Option<Value>,
    /// A `foreach` item and its name.
    pub item: Option<(String, Value)>,
}

impl Scope {
    pub fn new(params: Value, vars: Value, run: Value, steps: Value) -> Scope {
        Scope {
            params,
            vars,
            run,
            steps,
            outputs: None,
            item: None,
        }
    }

    /// The same scope with a `foreach` item in view under `name`.
    pub fn with_item(&self, name: &str, item: Value) -> Arc<Scope> {
        Arc::new(Scope {
            item: Some((name.to_string(), item)),
            ..self.clone()
        })
    }

    /// The same scope with a step's outputs in view.
    pub fn with_outputs(&self, outputs: Value) -> Arc<Scope> {
        Arc::new(Scope {
            outputs: Some(outputs),
            ..self.clone()
        })
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        match name {
            "params" => Some(self.params.clone()),
            "vars" => Some(self.vars.clone()),
            "run" => Some(self.run.clone()),
            "steps" => Some(self.steps.clone()),
            "outputs" => self.outputs.clone(),
            other if self.item.as_ref().is_some_and(|(n, _)| n == other) => {
                self.item.as_ref().map(|(_, v)| v.clone())
            }
            other => self
                .outputs
                .as_ref()?
                .get_attr(other)
                .ok()
                .filter(|v| !v.is_undefined()),
        }
    }

    /// For an "undefined value" error: the first name along any of `refs` that does not
    /// exist, with what does exist beside it.
    pub fn explain_undefined(&self, refs: &[Ref]) -> Option<String> {
        for r in refs {
            let Some(mut cur) = self.lookup(&r.root) else {
                return Some(format!("`{}` is not defined", r.root));
            };
            for (depth, seg) in r.path.iter().enumerate() {
                let next = match seg {
                    Seg::Name(n) => cur.get_attr(n).ok(),
                    Seg::Index(i) => cur.get_item(&Value::from(*i)).ok(),
                    Seg::Dynamic => break,
                };
                match next {
                    Some(v) if !v.is_undefined() => cur = v,
                    _ => {
                        let parent = r.dotted(depth);
                        let have = keys_of(&cur);
                        let have = if have.is_empty() {
                            format!("`{parent}` is {}", describe(&cur))
                        } else {
                            format!("`{parent}` has {have}")
                        };
                        return Some(format!("`{}` is undefined ({have})", r.dotted(depth + 1)));
                    }
                }
            }
        }
        None
    }
}

fn keys_of(v: &Value) -> String {
    if v.as_object().is_none() || v.kind() != minijinja::value::ValueKind::Map {
        return String::new();
    }
    let Ok(iter) = v.try_iter() else {
        return String::new();
    };
    let keys: Vec<String> = iter.take(20).map(|k| k.to_string()).collect();
    keys.join(", ")
}

fn describe(v: &Value) -> String {
    if v.is_none() {
        "null".to_string()
    } else {
        format!("a {}", v.kind())
    }
}

impl Object for Scope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.lookup(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["params", "vars", "run", "steps"])
    }
}
