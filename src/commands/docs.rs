//! `list`, `show`, `graph`, `schema`, `completions`, `man`: reading runbooks, not running
//! them.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit_code;
use crate::invocation::{Global, GraphFormat, Shell};
use crate::library::{Library, read_source};
use crate::report;

pub fn list(g: &Global) -> i32 {
    let config = match super::load_config(g) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let library = Library::for_config(&config);
    let mut rows = Vec::new();
    for (name, path) in library.entries() {
        // A quick read of name/title/severity; broken files are listed as such.
        let (severity, title) = match read_source(path) {
            Ok(file) => {
                let mut diags = crate::diagnostic::Diagnostics::new();
                match crate::loader::load_runbook(&file, library.registry(), &mut diags) {
                    Some((rb, _)) if !diags.has_errors() => (
                        rb.severity
                            .map_or("-".to_string(), |s| s.as_str().to_string()),
                        rb.title,
                    ),
                    _ => (
                        "!".to_string(),
                        format!("(invalid: run `opsctl lint {}`)", path.display()),
                    ),
                }
            }
            Err(_) => ("!".to_string(), "(unreadable)".to_string()),
        };
        rows.push((name.to_string(), severity, title));
    }
    if rows.is_empty() {
        eprintln!(
            "no runbooks found in {}",
            config
                .runbook_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return exit_code::OK;
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let mut text = format!("{:<width$}  {:<8}  {}\n", "NAME", "SEVERITY", "TITLE");
    for (name, sev, title) in rows {
        text.push_str(&format!("{name:<width$}  {sev:<8}  {title}\n"));
    }
    super::print_stdout(&text)
}

pub fn show(g: &Global, name: &str) -> i32 {
    let config = match super::load_config(g) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The environment only sharpens descriptions (namespaces, URLs); without one, the
    // runbook is still shown.
    let env = config.select_env(g.env.as_deref()).unwrap_or_default();
    match super::load_runbook(g, &config, name) {
        Ok((_, checked)) => {
            // Every renderer masks what the run would mask: the env's credentials and the
            // credentials written in the steps (URL passwords, auth headers).
            let redactor = crate::redact::Redactor::new();
            crate::targets::register_env_secrets(&env, &redactor);
            for step in &checked.runbook.steps {
                redactor.add_reachable(&step.action.args.as_written());
            }
            let text = report::markdown::render(&checked, &env);
            super::print_stdout(&crate::redact::mask_url_passwords(&redactor.redact(&text)))
        }
        Err(code) => code,
    }
}

pub fn graph(g: &Global, name: &str, format: GraphFormat) -> i32 {
    let config = match super::load_config(g) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match super::load_runbook(g, &config, name) {
        Ok((_, checked)) => super::print_stdout(&match format {
            GraphFormat::Mermaid => report::graph::mermaid(&checked),
            GraphFormat::Dot => report::graph::dot(&checked),
        }),
        Err(code) => code,
    }
}

pub fn schema() -> i32 {
    let doc = crate::schema::runbook_schema();
    super::print_stdout(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"))
}

pub fn completions(shell: Shell) -> i32 {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::PowerShell => clap_complete::Shell::PowerShell,
        Shell::Elvish => clap_complete::Shell::Elvish,
    };
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "opsctl", &mut buf);
    super::print_stdout(&String::from_utf8_lossy(&buf))
}

pub fn man() -> i32 {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut buf) {
        eprintln!("opsctl: cannot render the man page: {e}");
        return exit_code::INVALID;
    }
    super::print_stdout(&String::from_utf8_lossy(&buf))
}

/// `opsctl actions [NAME] [--markdown]`.
pub fn actions(name: Option<&str>, markdown: bool) -> i32 {
    use crate::actions::docs;
    match name {
        Some(n) => match crate::actions::lookup(n) {
            Some(a) => super::print_stdout(&docs::action_markdown(a)),
            None => {
                let help = crate::suggest::help(n, crate::actions::names())
                    .unwrap_or_else(|| "`opsctl actions` lists them".to_string());
                eprintln!("opsctl: no action named `{n}`; {help}");
                exit_code::INVALID
            }
        },
        None if markdown => super::print_stdout(&docs::markdown()),
        None => {
            let mut text = String::new();
            for a in crate::actions::REGISTRY {
                let s = a.spec();
                text.push_str(&format!("{:<16} {}\n", s.name, s.summary));
            }
            super::print_stdout(&text)
        }
    }
}
