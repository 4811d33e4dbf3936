//! GitHub Actions workflow-command rendering: `::error file=…,line=…,col=…::message`.

use super::Diagnostic;

/// One annotation line per diagnostic.
pub fn render_github(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let mut props = Vec::new();
        if let Some(file) = d.file_display() {
            props.push(format!("file={}", escape_property(&file)));
        }
        if let Some(label) = &d.primary {
            let (line, col) = label.line_col();
            let (end_line, end_col) = label.file.line_col(label.span.end);
            props.push(format!("line={line}"));
            props.push(format!("col={col}"));
            props.push(format!("endLine={end_line}"));
            if end_line == line {
                props.push(format!("endColumn={end_col}"));
            }
        }
        props.push(format!(
            "title={}",
            escape_property(&format!("{} {}", d.rule.code(), d.rule.name()))
        ));
        let mut message = format!("[{}] {}", d.rule.code(), d.message);
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        out.push_str(&format!(
            "::{} {}::{}\n",
            d.severity.as_str(),
            props.join(","),
            escape_data(&message)
        ));
    }
    out
}

pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

pub(crate) fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
