//! Processes a run starts (`exec` steps) must not outlive it: each runs in its own process
//! group, registered here while it lives, so every exit path can end them — a step's end
//! or timeout drops its [`Group`], a second Ctrl-C calls [`kill_all`] before exiting, and
//! if opsctl itself is killed the kernel sends the direct child SIGKILL (parent-death
//! signal).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

static LIVE: LazyLock<Mutex<HashSet<i32>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// A running child's process group, killed when dropped.
pub struct Group(i32);

impl Group {
    /// Registers the process group led by `pid`.
    pub fn track(pid: u32) -> Group {
        let pgid = i32::try_from(pid).unwrap_or(0);
        if pgid > 0 {
            LIVE.lock().unwrap_or_else(|p| p.into_inner()).insert(pgid);
        }
        Group(pgid)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.0 > 0 {
            LIVE.lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.0);
            kill_group(self.0);
        }
    }
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Kills every process group still running (before an immediate exit).
pub fn kill_all() {
    let groups: Vec<i32> = LIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .collect();
    for g in groups {
        kill_group(g);
    }
}

/// The child gets SIGKILL if opsctl dies (even by SIGKILL, which runs no cleanup).
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("opsctl exited"));
            }
            Ok(())
        });
    }
}
