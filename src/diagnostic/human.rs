//! Human rendering of diagnostics: rustc-style header, location arrow, source snippet, help line.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::{Diagnostic, Label, Severity};

const BOLD: Style = Style::new().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const BLUE: Style = AnsiColor::Blue.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default().bold();

/// Renders one diagnostic. `color` adds ANSI styles (the caller decides from TTY and NO_COLOR).
pub fn render_human(d: &Diagnostic, color: bool) -> String {
    let paint = |s: Style, text: &str| -> String {
        if color {
            format!("{}{text}{}", s.render(), s.render_reset())
        } else {
            text.to_string()
        }
    };
    let (sev_style, sev) = match d.severity {
        Severity::Error => (RED, "error"),
        Severity::Warning => (YELLOW, "warning"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}{}",
        paint(sev_style, &format!("{sev}[{}]", d.rule.code())),
        paint(BOLD, &format!(": {}", d.message))
    );
    let gutter = d
        .primary
        .as_deref()
        .into_iter()
        .chain(d.secondary.iter())
        .map(|l| l.line_col().0.to_string().len())
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(gutter);
    match (&d.primary, &d.path) {
        (Some(label), _) => {
            let (line, col) = label.line_col();
            let _ = writeln!(
                out,
                "{pad}{} {}:{line}:{col}",
                paint(BLUE, "-->"),
                label.file.display_path()
            );
            let _ = writeln!(out, "{pad} {}", paint(BLUE, "|"));
            snippet(&mut out, label, gutter, sev_style, '^', &paint);
            for other in &d.secondary {
                if std::sync::Arc::ptr_eq(&other.file, &label.file) {
                    snippet(&mut out, other, gutter, BLUE, '-', &paint);
                } else {
                    let (l, c) = other.line_col();
                    let _ = writeln!(
                        out,
                        "{pad} {} {}:{l}:{c}: {}",
                        paint(BLUE, "="),
                        other.file.display_path(),
                        other.text.as_deref().unwrap_or("")
                    );
                }
            }
            if d.help.is_some() {
                let _ = writeln!(out, "{pad} {}", paint(BLUE, "|"));
            }
        }
        (None, Some(path)) => {
            let _ = writeln!(out, "{pad}{} {}", paint(BLUE, "-->"), path.display());
        }
        (None, None) => {}
    }
    if let Some(help) = &d.help {
        let _ = writeln!(
            out,
            "{pad} {} {}",
            paint(BLUE, "="),
            paint(CYAN, "help:") + " " + help
        );
    }
    out
}

fn snippet(
    out: &mut String,
    label: &Label,
    gutter: usize,
    style: Style,
    mark: char,
    paint: &dyn Fn(Style, &str) -> String,
) {
    let (line, col) = label.line_col();
    let text = label.file.line_text(line);
    let (end_line, end_col) = label.file.line_col(label.span.end);
    let width = if end_line == line && end_col > col {
        end_col - col
    } else if end_line > line {
        text.chars().count().saturating_sub(col - 1).max(1)
    } else {
        1
    };
    let text = text.replace('\t', " ");
    let _ = writeln!(
        out,
        "{} {} {}",
        paint(BLUE, &format!("{line:>gutter$}")),
        paint(BLUE, "|"),
        text
    );
    let marks: String = std::iter::repeat_n(mark, width).collect();
    let label_text = label.text.as_deref().unwrap_or("");
    let underline = format!("{}{marks} {label_text}", " ".repeat(col - 1));
    let _ = writeln!(
        out,
        "{} {} {}",
        " ".repeat(gutter),
        paint(BLUE, "|"),
        paint(style, underline.trim_end())
    );
}

/// Renders many diagnostics separated by blank lines.
pub fn render_human_all(diags: &[Diagnostic], color: bool) -> String {
    diags
        .iter()
        .map(|d| render_human(d, color))
        .collect::<Vec<_>>()
        .join("\n")
}
