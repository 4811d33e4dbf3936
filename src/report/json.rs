//! `run --format json`: one object when the run ends (contract section 7), rendered from
//! the run's [`Summary`].

use std::io::Write;

use serde_json::Value;

use super::summary::Summary;
use crate::exec::{Event, Reporter};

pub struct JsonReporter {
    out: Box<dyn Write + Send>,
    summary: Summary,
    /// The printed object (kept for callers that embed opsctl).
    pub last: Option<Value>,
}

impl JsonReporter {
    pub fn new(out: Box<dyn Write + Send>) -> JsonReporter {
        JsonReporter {
            out,
            summary: Summary::new(),
            last: None,
        }
    }

    fn print(&mut self) {
        let doc = self.summary.to_json();
        let _ = writeln!(
            self.out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        let _ = self.out.flush();
        self.last = Some(doc);
    }
}

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event) {
        self.summary.add(event);
        if let Event::RunFinished { parent: None, .. } = event {
            self.print();
        }
    }
}
