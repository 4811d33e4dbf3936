//! JSON rendering of diagnostics, for editors and scripts (`lint --format json`).

use serde_json::{Value, json};

use super::Diagnostic;

/// One diagnostic as a JSON object with 1-based line/column (columns count characters).
pub fn diagnostic_json(d: &Diagnostic) -> Value {
    let mut v = json!({
        "code": d.rule.code(),
        "rule": d.rule.name(),
        "severity": d.severity.as_str(),
        "message": d.message,
        "file": d.file_display(),
    });
    if let Some(label) = &d.primary {
        let (line, column) = label.line_col();
        let (end_line, end_column) = label.file.line_col(label.span.end);
        v["line"] = json!(line);
        v["column"] = json!(column);
        v["end_line"] = json!(end_line);
        v["end_column"] = json!(end_column);
        v["label"] = json!(label.text);
    }
    v["help"] = json!(d.help);
    if !d.secondary.is_empty() {
        v["related"] = d
            .secondary
            .iter()
            .map(|l| {
                let (line, column) = l.line_col();
                json!({"file": l.file.display_path(), "line": line, "column": column, "message": l.text})
            })
            .collect();
    }
    v
}

/// `{"diagnostics": [...], "errors": N, "warnings": N}`, pretty-printed.
pub fn render_json(diags: &[Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let doc = json!({
        "diagnostics": diags.iter().map(diagnostic_json).collect::<Vec<_>>(),
        "errors": errors,
        "warnings": diags.len() - errors,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
