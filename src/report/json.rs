//! `run --format json`: one object when the run ends (contract section 7).

use std::io::Write;

use serde_json::{Value, json};

use crate::exec::{Event, Reporter};

/// Collects the top-level steps and prints the run object at the end.
pub struct JsonReporter {
    out: Box<dyn Write + Send>,
    steps: Vec<(usize, Value)>,
    /// In a plan: every step it described instead of executing, nested ones included.
    planned: Vec<Value>,
    mode: &'static str,
    /// The printed object (kept for callers that embed opsctl).
    pub last: Option<Value>,
}

impl JsonReporter {
    pub fn new(out: Box<dyn Write + Send>) -> JsonReporter {
        JsonReporter {
            out,
            steps: Vec::new(),
            planned: Vec::new(),
            mode: "run",
            last: None,
        }
    }
}

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event) {
        if let Event::StepFinished {
            path,
            plan: Some(p),
            ..
        } = event
        {
            self.planned.push(json!({
                "path": path,
                "would_run": p.would_run,
                "reason": p.reason,
                "description": p.description,
                "args": p.args,
            }));
        }
        match event {
            Event::RunStarted {
                parent: None, mode, ..
            } => self.mode = mode,
            Event::StepFinished {
                path,
                index,
                id,
                name,
                action,
                status,
                attempts,
                duration_ms,
                message,
                cause,
                outputs,
                plan,
                ..
            } if !path.contains('/') => {
                let mut step = json!({
                    "id": id,
                    "name": name,
                    "action": action,
                    "status": status,
                    "attempts": attempts,
                    "duration_ms": duration_ms,
                    "message": message,
                    "outputs": outputs,
                });
                if let Some(c) = cause {
                    step["cause"] = json!(c);
                }
                if let Some(p) = plan {
                    step["plan"] = json!(p);
                }
                self.steps.push((*index, step));
            }
            Event::RunFinished {
                run_id,
                runbook,
                parent: None,
                status,
                duration_ms,
                ..
            } => {
                self.steps.sort_by_key(|(i, _)| *i);
                let mut doc = json!({
                    "runbook": runbook,
                    "run_id": run_id,
                    "mode": self.mode,
                    "status": status,
                    "duration_ms": duration_ms,
                    "steps": self.steps.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(),
                });
                if self.mode == "plan" {
                    doc["planned"] = Value::Array(std::mem::take(&mut self.planned));
                }
                let _ = writeln!(
                    self.out,
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                );
                let _ = self.out.flush();
                self.last = Some(doc);
            }
            _ => {}
        }
    }
}
