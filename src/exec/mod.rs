//! Execution: the scheduler walks the step graph, each step runs its action through the
//! shared clients, and everything that happens is emitted as events.

pub mod children;
pub mod confirm;
pub mod context;
pub mod events;
mod scheduler;
mod state;
mod step;

pub use context::{Mode, NestedResult, RunCtx, Shared, StepContext};
pub use events::{Event, EventSink, Planned, Reporter, RunStatus, StepStatus};
pub use scheduler::{RunOutcome, run};

/// The person running opsctl (`run.user`): `$USER`, else `$LOGNAME`, else "unknown".
pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// A run id that sorts by time and is unique enough: `20261124T031500Z-1a2b3c`.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 3];
    let _ = getrandom::fill(&mut bytes);
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}
