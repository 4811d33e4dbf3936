//! Colours and status marks, honouring NO_COLOR and whether output is a terminal.

use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};

use crate::exec::StepStatus;

/// `auto` (a terminal and no NO_COLOR), `always` or `never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled_for_stdout(self) -> bool {
        self.enabled(std::io::stdout().is_terminal())
    }

    pub fn enabled_for_stderr(self) -> bool {
        self.enabled(std::io::stderr().is_terminal())
    }

    fn enabled(self, tty: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        }
    }
}

/// Paints text when colour is on.
#[derive(Clone, Copy, Debug)]
pub struct Painter {
    pub color: bool,
}

impl Painter {
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }

    /// The mark and word of a status, padded: `✔ ok   `.
    pub fn status(&self, status: StepStatus) -> String {
        let (mark, style) = status_style(status);
        let word = format!("{mark} {:<9}", status.as_str());
        self.paint(style, &word)
    }
}

pub fn status_style(status: StepStatus) -> (&'static str, Style) {
    match status {
        StepStatus::Ok => ("✔", AnsiColor::Green.on_default()),
        StepStatus::Warn => ("▲", AnsiColor::Yellow.on_default().bold()),
        StepStatus::Fail => ("✖", AnsiColor::Red.on_default().bold()),
        StepStatus::Error => ("✖", AnsiColor::Red.on_default().bold()),
        StepStatus::Skipped => ("○", Style::new().dimmed()),
        StepStatus::Cancelled => ("⊘", AnsiColor::Magenta.on_default()),
    }
}

/// `1.2s`, `340ms`.
pub fn human_ms(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{:.0}s", ms as f64 / 1000.0)
    } else if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// Columns of the terminal on stdout (`$COLUMNS` when set), if stdout is one.
pub fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return Some(n);
    }
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct we own; a failure leaves it zeroed.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}
