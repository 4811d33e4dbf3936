//! Execution: the scheduler walks the step graph, each step runs its action through the
//! shared clients, and everything that happens is emitted as events.

pub mod confirm;
pub mod context;
pub mod events;
mod scheduler;
mod state;
mod step;

pub use context::{Mode, NestedResult, RunCtx, Shared, StepContext};
pub use events::{Event, EventSink, Planned, Reporter, RunStatus, StepStatus};
pub use scheduler::{RunOutcome, run};
