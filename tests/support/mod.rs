//! Test support: run the real `opsctl` binary on temp files, real local servers, and the
//! URLs of the Postgres/Redis test services.
#![allow(dead_code)]

pub mod http_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "opsctl-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A project on disk: files written into a temp dir, opsctl run inside it.
pub struct Project {
    dir: TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: TempDir::new(),
        }
    }

    /// Writes a file (creating directories).
    pub fn file(&self, rel: &str, content: &str) -> &Project {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write file");
        self
    }

    /// Writes `runbooks/NAME.yaml`.
    pub fn runbook(&self, name: &str, content: &str) -> &Project {
        self.file(&format!("runbooks/{name}.yaml"), content)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap_or_default()
    }

    /// `opsctl` with this project as the working directory and a clean environment.
    pub fn opsctl(&self) -> Cmd {
        Cmd::new(self.dir.path())
    }
}

/// A configured `opsctl` invocation.
pub struct Cmd {
    cmd: Command,
    stdin: Option<String>,
}

impl Cmd {
    pub fn new(cwd: &Path) -> Cmd {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsctl"));
        cmd.current_dir(cwd);
        let state = cwd.join(".state");
        cmd.env("XDG_STATE_HOME", &state)
            .env("XDG_CONFIG_HOME", cwd.join(".config"))
            .env("HOME", cwd)
            .env("NO_COLOR", "1")
            .env_remove("OPSCTL_CONFIG")
            .env_remove("OPSCTL_ENV")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL");
        Cmd { cmd, stdin: None }
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.cmd.arg(arg);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Cmd {
        self.cmd.env_remove(k);
        self
    }

    pub fn stdin(mut self, text: &str) -> Cmd {
        self.stdin = Some(text.to_string());
        self
    }

    /// Runs to completion (stdin is closed or fed, never a terminal).
    pub fn run(mut self) -> Out {
        use std::io::Write;
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn opsctl");
        if let Some(mut sin) = child.stdin.take() {
            if let Some(text) = &self.stdin {
                let _ = sin.write_all(text.as_bytes());
            }
        }
        let out = child.wait_with_output().expect("wait opsctl");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Cmd {
    /// Starts opsctl without waiting (stdin closed, outputs piped); see [`Out::of`].
    pub fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn opsctl")
    }

    /// Runs to completion, but kills opsctl and fails the test if it takes longer than
    /// `limit` (a hang guard, not a performance check). Returns the output and how long
    /// it took.
    #[track_caller]
    pub fn run_within(mut self, limit: std::time::Duration) -> (Out, std::time::Duration) {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let started = std::time::Instant::now();
        let mut child = self.cmd.spawn().expect("spawn opsctl");
        loop {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait opsctl");
                panic!(
                    "opsctl did not finish within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let took = started.elapsed();
        let out = child.wait_with_output().expect("wait opsctl");
        (
            Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            took,
        )
    }
}

impl Out {
    /// The output of a spawned opsctl, once it has ended.
    pub fn of(child: std::process::Child) -> Out {
        let out = child.wait_with_output().expect("wait opsctl");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Out {
        assert_eq!(
            self.code, expected,
            "exit code {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Out {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Out {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts `needle` appears in neither stream.
    #[track_caller]
    pub fn never_shows(&self, needle: &str) -> &Out {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "output shows {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The URL of a test service from the environment. Missing, the test fails and says
/// how to start the services: tests are never silently skipped.
pub fn service_url(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: this test needs a real service. Run ./scripts/test.sh (it installs and starts \
             PostgreSQL and Redis and exports the URLs), or `. scripts/test-services.sh` before `cargo test`."
        ),
    }
}

/// A name no other test (or run of the suite) uses: `tag_<pid>_<n>`.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
