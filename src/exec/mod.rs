//! Execution: the scheduler walks the step graph, each step runs its action through the
//! shared clients, and everything that happens is emitted as events.

pub mod children;
pub mod confirm;
pub mod context;
pub mod events;
pub mod lock;
pub mod runner;
mod scheduler;
mod state;
mod step;

pub use context::{Mode, NestedResult, RunCtx, Shared, StepContext};
pub use events::{Event, EventSink, Planned, Reporter, RunStatus, StepStatus};
pub use scheduler::{RunOutcome, run};

/// The person running opsctl (`run.user`): `$USER`, else `$LOGNAME`, else the name of
/// the process's uid (containers and CronJobs set no `$USER`), else `uid N`.
pub fn current_user() -> String {
    if let Some(name) = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
    {
        return name;
    }
    // SAFETY: getuid cannot fail; getpwuid_r writes into the buffers we own and sized.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            if let Ok(name) = std::ffi::CStr::from_ptr(pwd.pw_name).to_str() {
                if !name.is_empty() {
                    return name.to_string();
                }
            }
        }
        format!("uid {uid}")
    }
}

/// This machine's host name, or "unknown".
pub fn current_host() -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    // One byte short of the buffer, so the name always ends with a NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) };
    if rc != 0 {
        return "unknown".to_string();
    }
    // SAFETY: the buffer is NUL-terminated within its length (we zeroed it).
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    name.to_str()
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or("unknown")
        .to_string()
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
