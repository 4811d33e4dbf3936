//! One function per command: load what it needs, call the library, render, and return
//! the exit code. Errors are rendered here, at the boundary.

mod docs;
mod health;
mod history;
mod lint;
mod rbac;
mod report;
mod run;
mod test;

use std::io::Write;

use crate::config::Config;
use crate::diagnostic::{Diagnostic, render_human_all};
use crate::exit_code;
use crate::invocation::{Command, Global, Invocation};
use crate::library::{Checked, Library};
use crate::redact::Redactor;

/// Runs the invocation and returns the process exit code.
pub fn dispatch(inv: Invocation) -> i32 {
    let g = &inv.global;
    match inv.command {
        Command::Run(opts) | Command::Plan(opts) if opts.dry_run => run::dry_run(g, &opts),
        Command::Run(opts) => run::run(g, &opts, crate::exec::Mode::Run),
        Command::Plan(opts) => run::run(g, &opts, crate::exec::Mode::Plan),
        Command::Health(opts) => health::health(g, &opts),
        Command::Lint {
            paths,
            explain,
            format,
        } => lint::lint(g, &paths, explain, format),
        Command::Report { record, format } => report::report(g, &record, format),
        Command::Test {
            paths,
            from_record: Some(record),
            ..
        } if paths.is_empty() => test::from_record(&record),
        Command::Test { paths, format, .. } => test::test(g, &paths, format),
        Command::History {
            runbook,
            limit,
            format,
        } => history::history(g, runbook.as_deref(), limit, format),
        Command::List => docs::list(g),
        Command::Show { name } => docs::show(g, &name),
        Command::Graph { name, format } => docs::graph(g, &name, format),
        Command::Actions { name, markdown } => docs::actions(name.as_deref(), markdown),
        Command::Schema => docs::schema(),
        Command::Completions(shell) => docs::completions(shell),
        Command::Man => docs::man(),
        Command::Rbac { runbooks, format } => rbac::rbac(g, &runbooks, format),
    }
}

/// Prints diagnostics on stderr (human form) after redaction.
pub fn report_errors(g: &Global, diags: &[Diagnostic], redactor: &Redactor) {
    let text = render_human_all(diags, g.color.enabled_for_stderr());
    let text = crate::redact::mask_url_passwords(&redactor.redact(&text));
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{text}");
}

/// Loads the config or reports why not.
pub fn load_config(g: &Global) -> Result<Config, i32> {
    Config::load(g.config.as_deref()).map_err(|diags| {
        report_errors(g, diags.as_slice(), &Redactor::new());
        exit_code::INVALID
    })
}

/// Resolves and checks a runbook by name or path; errors are reported (exit 2).
pub fn load_runbook(g: &Global, config: &Config, name: &str) -> Result<(Library, Checked), i32> {
    let library = Library::for_config(config);
    let path = library.resolve(name).map_err(|d| {
        report_errors(g, &[d], &Redactor::new());
        exit_code::INVALID
    })?;
    let mut lib = library;
    lib.add(path.clone());
    match lib.load_checked(&path, Some(config)) {
        Ok(checked) => {
            if !checked.warnings.is_empty() {
                report_errors(g, &checked.warnings, &Redactor::new());
            }
            Ok((lib, checked))
        }
        Err(diags) => {
            report_errors(g, &diags, &Redactor::new());
            Err(exit_code::INVALID)
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends quietly.
pub fn print_stdout(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit_code::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_code::OK,
        Err(e) => {
            eprintln!("opsctl: cannot write output: {e}");
            exit_code::INVALID
        }
    }
}
