//! Reports: the human live view and summary, the JSON run object, the JSONL record,
//! the dry-run plan, `show` markdown and `graph` pictures. Reporters consume executor
//! events; the others render the checked runbook.

pub mod dry_run;
pub mod graph;
pub mod human;
pub mod json;
pub mod markdown;
pub mod postmortem;
pub mod prompt;
pub mod record;
pub mod style;
pub mod summary;

pub use human::HumanReporter;
pub use json::JsonReporter;
pub use record::RecordWriter;
