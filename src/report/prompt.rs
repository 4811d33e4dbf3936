//! Asking on the terminal (contract section 5): `y` runs, `n` skips, `a` aborts the run;
//! `--yes` confirms every mutation; without a terminal and without `--yes`, mutating steps
//! are skipped, never executed. `manual` steps wait for a person unless `--yes-manual`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::exec::confirm::{ConfirmRequest, Confirmer, Decision, Interact, ManualRequest, Pause};
use crate::redact::Redactor;

/// The policy of a run: flags first, then the terminal if there is one.
pub struct Prompter {
    pub yes: bool,
    pub yes_manual: bool,
    /// Whether a person can answer on stdin (stdin and stderr are terminals).
    pub interactive: bool,
    pub display: Option<Arc<dyn Pause>>,
    /// Prompts show step arguments and instructions: they pass through the run's redactor.
    redactor: Redactor,
    /// Ctrl-C while a question is open aborts it.
    cancel: CancellationToken,
    /// One question at a time.
    lock: tokio::sync::Mutex<()>,
}

impl Prompter {
    pub fn new(
        yes: bool,
        yes_manual: bool,
        interactive: bool,
        display: Option<Arc<dyn Pause>>,
        redactor: Redactor,
        cancel: CancellationToken,
    ) -> Prompter {
        Prompter {
            yes,
            yes_manual,
            interactive,
            display,
            redactor,
            cancel,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn ask(&self, text: String, allow_abort: bool) -> Decision {
        let _one_at_a_time = self.lock.lock().await;
        if self.cancel.is_cancelled() {
            return Decision::Abort;
        }
        let text = self.redactor.redact(&text);
        if let Some(d) = &self.display {
            d.pause();
        }
        // The read blocks a thread of its own; the run's other steps go on meanwhile.
        let read = tokio::task::spawn_blocking(move || prompt_blocking(&text, allow_abort));
        let decision = tokio::select! {
            answer = read => answer.unwrap_or(Decision::Abort),
            () = self.cancel.cancelled() => Decision::Abort,
        };
        if let Some(d) = &self.display {
            d.resume();
        }
        decision
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
            "y" | "yes" => {
                return Decision::Yes {
                    by: Confirmer::User,
                };
            }
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
                return Decision::Yes { by: Confirmer::Yes };
            }
            if !self.interactive {
                return Decision::Unavailable(
                    "not run: it needs a confirmation, and there is no terminal to confirm on and no --yes".to_string(),
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
                return Decision::Yes {
                    by: Confirmer::YesManual,
                };
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
