//! Asking before mutations (contract section 5): on a terminal, `y` runs, `n` skips,
//! `a` aborts the run; `--yes` confirms everything; without a terminal and without
//! `--yes`, mutating steps are skipped, never executed. `manual` steps wait for a person
//! unless `--yes-manual`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use futures::future::BoxFuture;

/// The answer to a question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run it (`by` says who decided: "user", "--yes", "--yes-manual").
    Yes {
        by: &'static str,
    },
    No,
    Abort,
    /// Nobody can be asked; the reason says why.
    Unavailable(String),
}

/// A mutating step waiting for a go.
pub struct ConfirmRequest {
    pub path: String,
    pub title: String,
    pub description: String,
    pub args: String,
}

/// A manual step waiting for a person.
pub struct ManualRequest {
    pub path: String,
    pub title: String,
    pub instructions: String,
}

pub trait Interact: Send + Sync {
    fn confirm<'a>(&'a self, req: ConfirmRequest) -> BoxFuture<'a, Decision>;
    fn manual<'a>(&'a self, req: ManualRequest) -> BoxFuture<'a, Decision>;
}

/// Suspends a live display while a prompt is shown (the human reporter's progress bars).
pub trait Suspend: Send + Sync {
    fn suspend(&self, f: &mut dyn FnMut());
}

/// The policy of a run: flags first, then the terminal if there is one.
pub struct Prompter {
    pub yes: bool,
    pub yes_manual: bool,
    /// Whether a person can answer on stdin (stdin and stderr are terminals).
    pub interactive: bool,
    pub display: Option<Arc<dyn Suspend>>,
    /// One question at a time.
    lock: tokio::sync::Mutex<()>,
}

impl Prompter {
    pub fn new(
        yes: bool,
        yes_manual: bool,
        interactive: bool,
        display: Option<Arc<dyn Suspend>>,
    ) -> Prompter {
        Prompter {
            yes,
            yes_manual,
            interactive,
            display,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn ask(&self, text: String, allow_abort: bool) -> Decision {
        let _one_at_a_time = self.lock.lock().await;
        let display = self.display.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let mut result = Decision::No;
            let mut f = || result = prompt_blocking(&text, allow_abort);
            match display {
                Some(d) => d.suspend(&mut f),
                None => f(),
            }
            result
        })
        .await;
        answer.unwrap_or(Decision::Abort)
    }
}

fn prompt_blocking(text: &str, allow_abort: bool) -> Decision {
    let stdin = std::io::stdin();
    let mut stderr = std::io::stderr();
    loop {
        let _ = write!(stderr, "{text}");
        let _ = stderr.flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return Decision::Abort,
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Decision::Yes { by: "user" },
            "n" | "no" => return Decision::No,
            "a" | "abort" if allow_abort => return Decision::Abort,
            _ => {
                let _ = writeln!(
                    stderr,
                    "  please answer y, n{}",
                    if allow_abort { " or a" } else { "" }
                );
            }
        }
    }
}

impl Interact for Prompter {
    fn confirm<'a>(&'a self, req: ConfirmRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            if self.yes {
                return Decision::Yes { by: "--yes" };
            }
            if !self.interactive {
                return Decision::Unavailable(
                    "mutating step not run: no terminal to confirm on and no --yes".to_string(),
                );
            }
            let heading = if req.title == req.path || req.path.ends_with(&format!("/{}", req.title))
            {
                req.path.clone()
            } else {
                format!("{} — {}", req.path, req.title)
            };
            let text = format!(
                "\n? {heading} wants to change something:\n  {}\n  args: {}\n  Run it? [y] run / [n] skip / [a] abort the run: ",
                req.description, req.args
            );

            self.ask(text, true).await
        })
    }

    fn manual<'a>(&'a self, req: ManualRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            if self.yes_manual {
                return Decision::Yes { by: "--yes-manual" };
            }
            if !self.interactive {
                return Decision::Unavailable(
                    "manual step needs a person: run on a terminal or pass --yes-manual"
                        .to_string(),
                );
            }
            let instructions: String = req
                .instructions
                .lines()
                .map(|l| format!("  │ {l}\n"))
                .collect();
            let text = format!(
                "\n✋ {} — {}\n{instructions}  Done? [y] done / [n] not done / [a] abort the run: ",
                req.path, req.title
            );
            self.ask(text, true).await
        })
    }
}
