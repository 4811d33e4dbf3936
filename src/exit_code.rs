//! Exit codes, in one place (contract section 7).

/// `run`/`plan`: every step ended ok or warn (or was skipped by design).
pub const OK: i32 = 0;
/// `run`/`plan`: a step failed or errored. `lint`: findings at error level.
/// `health`: degraded.
pub const FAILED: i32 = 1;
/// Invalid input: bad runbook, params, config or flags (`lint`: could not run;
/// `health`: unhealthy).
pub const INVALID: i32 = 2;
/// `health`: the checks could not run.
pub const HEALTH_COULD_NOT_RUN: i32 = 3;
/// Interrupted (Ctrl-C) or aborted at a confirmation prompt.
pub const INTERRUPTED: i32 = 130;
