//! `opsctl lint`.

use crate::diagnostic::{render_github, render_human_all, render_json};
use crate::exit_code;
use crate::invocation::{Global, LintFormat};
use crate::rules::Rule;

pub fn lint(g: &Global, paths: &[std::path::PathBuf], explain: bool, format: LintFormat) -> i32 {
    if explain {
        return super::print_stdout(&crate::rules::markdown());
    }

    // With explicit paths a broken config must not stop the lint of those files.
    let config = match crate::config::Config::load(g.config.as_deref()) {
        Ok(c) => c,
        Err(diags) if paths.is_empty() => {
            let code = print(g, diags.as_slice(), format);
            return if code == exit_code::OK {
                exit_code::FAILED
            } else {
                code
            };
        }
        Err(_) => crate::config::Config::implicit(),
    };
    if paths.is_empty() && config.runbook_dirs.iter().all(|d| !d.is_dir()) && config.file.is_none()
    {
        eprintln!(
            "opsctl lint: nothing to lint (no paths given, no opsctl.yaml, no ./runbooks directory)"
        );
        return exit_code::INVALID;
    }
    let diags = crate::lint::lint_paths(paths, &config);
    if diags.iter().any(|d| d.rule == Rule::Io) && diags.iter().all(|d| d.rule == Rule::Io) {
        print(g, &diags, format);
        return exit_code::INVALID;
    }
    print(g, &diags, format)
}

fn print(g: &Global, diags: &[crate::diagnostic::Diagnostic], format: LintFormat) -> i32 {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let text = match format {
        LintFormat::Human => {
            let mut t = render_human_all(diags, g.color.enabled_for_stdout());
            if !diags.is_empty() {
                t.push('\n');
            }
            t.push_str(&match (errors, warnings) {
                (0, 0) => "No problems found.\n".to_string(),
                (e, w) => format!(
                    "Found {e} error{} and {w} warning{}.\n",
                    plural(e),
                    plural(w)
                ),
            });
            t
        }
        LintFormat::Json => render_json(diags) + "\n",
        LintFormat::Github => render_github(diags),
    };
    // Snippets quote config lines; a literal URL's password must not be printed.
    let code = super::print_stdout(&crate::redact::mask_url_passwords(&text));
    if code != exit_code::OK {
        return code;
    }
    if errors > 0 {
        exit_code::FAILED
    } else {
        exit_code::OK
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
