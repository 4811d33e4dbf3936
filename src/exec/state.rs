//! The results of a run so far, readable by expressions as `steps.<id>` without copying:
//! each step's result is written once when it ends and read by its descendants.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::Map;

use super::events::StepStatus;

/// One finished step.
#[derive(Debug)]
pub struct StepResult {
    pub status: StepStatus,
    pub outputs: Map<String, serde_json::Value>,
    pub message: Option<String>,
    pub attempts: u32,
    pub duration_ms: u64,
    /// `{status, outputs}` as an expression value, built the first time an expression
    /// reads it: most results are never read, and a second copy of every step's outputs
    /// is what 10,000 checks would otherwise hold to the end of the run.
    value: OnceLock<Value>,
}

impl StepResult {
    pub fn new(
        status: StepStatus,
        outputs: Map<String, serde_json::Value>,
        message: Option<String>,
        attempts: u32,
        duration_ms: u64,
    ) -> StepResult {
        StepResult {
            status,
            outputs,
            message,
            attempts,
            duration_ms,
            value: OnceLock::new(),
        }
    }

    /// `{status, outputs}` as an expression reads it.
    pub fn value(&self) -> Value {
        self.value
            .get_or_init(|| {
                let mut result = Map::new();
                result.insert("status".into(), self.status.as_str().into());
                result.insert("outputs".into(), self.outputs.clone().into());
                crate::expr::from_json(&serde_json::Value::Object(result))
            })
            .clone()
    }
}

/// Results by step index; ids map through the shared index.
#[derive(Debug)]
pub struct RunState {
    index: Arc<HashMap<String, usize>>,
    slots: Vec<OnceLock<Arc<StepResult>>>,
}

impl RunState {
    pub fn new(index: Arc<HashMap<String, usize>>, len: usize) -> RunState {
        RunState {
            index,
            slots: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    pub fn set(&self, i: usize, result: StepResult) -> Arc<StepResult> {
        let arc = Arc::new(result);
        let _ = self.slots[i].set(arc.clone());
        arc
    }

    pub fn get(&self, i: usize) -> Option<&Arc<StepResult>> {
        self.slots.get(i).and_then(OnceLock::get)
    }

    pub fn status(&self, i: usize) -> Option<StepStatus> {
        self.get(i).map(|r| r.status)
    }
}

/// `steps` in expressions: a live view of [`RunState`].
#[derive(Debug)]
pub struct StepsView(pub Arc<RunState>);

impl Object for StepsView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let &i = self.0.index.get(key.as_str()?)?;
        self.0.get(i).map(|r| r.value())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let done: Vec<Value> = self
            .0
            .index
            .iter()
            .filter(|(_, i)| self.0.get(**i).is_some())
            .map(|(k, _)| Value::from(k.clone()))
            .collect();
        Enumerator::Values(done)
    }
}
