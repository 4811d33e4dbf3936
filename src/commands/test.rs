//! `opsctl test [PATH...]`: runbook test cases (`NAME.test.yaml` beside the runbook). Each
//! case gives params, what steps produce (outputs their assertions are evaluated on, or a
//! status) and how confirmations are answered; it expects which steps run, are skipped,
//! ask, and how the run ends. The real scheduler, `when` gates, assertions and prompts run;
//! no action does, so nothing is contacted. Exit 0 all pass, 1 a case failed, 2 could not
//! run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::exec::confirm::{ConfirmRequest, Decision, Interact, ManualRequest};
use crate::exec::context::Given;
use crate::exec::events::Confirmer;
use crate::exec::runner::{self, LockPolicy, Request, Settings};
use crate::exec::{Mode, RunStatus, StepStatus};
use crate::exit_code;
use crate::invocation::{Global, TestFormat};
use crate::library::Library;
use crate::report::summary::Summary;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The runbook (default: the file's name without `.test.yaml`).
    runbook: Option<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    /// How confirmations (and manual steps) are answered: yes (default) or no.
    #[serde(default = "yes")]
    answer: String,
    /// What steps produce, by id (`parent/child` inside a nested runbook).
    #[serde(default)]
    steps: HashMap<String, Given>,
    expect: Expect,
}

fn yes() -> String {
    "yes".to_string()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Steps that must have run (ended ok, warn, fail or error).
    #[serde(default)]
    ran: Vec<String>,
    #[serde(default)]
    skipped: Vec<String>,
    /// Steps that must have asked for a confirmation.
    #[serde(default)]
    asked: Vec<String>,
    /// Exact statuses of some steps.
    #[serde(default)]
    statuses: BTreeMap<String, StepStatus>,
    /// How the run ends: ok, warn, failed, cancelled.
    #[serde(default)]
    status: Option<RunStatus>,
}

/// Answers every question the same way and remembers who asked.
struct Scripted {
    yes: bool,
    asked: Mutex<Vec<String>>,
}

impl Scripted {
    fn answer(&self, path: String) -> Decision {
        if let Ok(mut a) = self.asked.lock() {
            a.push(path);
        }
        if self.yes {
            Decision::Yes {
                by: Confirmer::User,
            }
        } else {
            Decision::No
        }
    }
}

impl Interact for Scripted {
    fn confirm<'a>(&'a self, req: ConfirmRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move { self.answer(req.path) })
    }

    fn manual<'a>(&'a self, req: ManualRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move { self.answer(req.path) })
    }
}

/// `NAME.test.yaml` (or `.yml`) beside the runbook file `NAME.yaml`, if there is one.
fn cases_beside(runbook: &Path) -> Option<PathBuf> {
    let stem = runbook.file_stem()?.to_string_lossy().into_owned();
    ["test.yaml", "test.yml"]
        .iter()
        .map(|ext| runbook.with_file_name(format!("{stem}.{ext}")))
        .find(|p| p.is_file())
}

pub fn test(g: &Global, paths: &[PathBuf], format: TestFormat) -> i32 {
    let config = match super::load_config(g) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let library = Library::for_config(&config);
    let roots: Vec<PathBuf> = if paths.is_empty() {
        config.runbook_dirs.clone()
    } else {
        paths.to_vec()
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for root in &roots {
        // A runbook by name (`opsctl test sev1-outage`) or by file: the cases beside it.
        let runbook = match library
            .entries()
            .find(|(n, _)| Path::new(n) == root.as_path())
        {
            Some((_, path)) if !root.exists() => Some(path.to_path_buf()),
            _ => (root.is_file() && !crate::library::is_test_file(root)).then(|| root.clone()),
        };
        if let Some(rb) = runbook {
            files.extend(cases_beside(&rb));
        } else if root.is_file() {
            files.push(root.clone());
        } else {
            files.extend(test_files(root));
        }
    }
    if files.is_empty() {
        eprintln!("opsctl test: no test cases (NAME.test.yaml beside a runbook) found");
        return exit_code::INVALID;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("opsctl test: cannot start the runtime");
        return exit_code::INVALID;
    };
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    // (file, runbook, case, problems; Err: could not run)
    let mut results: Vec<CaseResult> = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                broken += 1;
                results.push((
                    file.clone(),
                    runbook_of(file),
                    String::new(),
                    Err(e.to_string()),
                ));
                continue;
            }
        };
        let parsed: TestFile = match serde_saphyr::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                broken += 1;
                results.push((
                    file.clone(),
                    runbook_of(file),
                    String::new(),
                    Err(e.to_string()),
                ));
                continue;
            }
        };
        let runbook = parsed.runbook.clone().unwrap_or_else(|| runbook_of(file));
        for case in &parsed.cases {
            let r = runtime.block_on(run_case(&config, &library, &runbook, case));
            match &r {
                Ok(p) if p.is_empty() => passed += 1,
                Ok(_) => failed += 1,
                Err(_) => broken += 1,
            }
            results.push((file.clone(), runbook.clone(), case.name.clone(), r));
        }
    }
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    let text = match format {
        TestFormat::Human => {
            let mut out = String::new();
            for (file, runbook, case, r) in &results {
                match r {
                    Ok(p) if p.is_empty() => out.push_str(&format!("ok    {runbook}: {case}\n")),
                    Ok(p) => {
                        out.push_str(&format!("FAIL  {runbook}: {case}\n"));
                        for line in p {
                            out.push_str(&format!("        {line}\n"));
                        }
                    }
                    Err(why) if case.is_empty() => {
                        out.push_str(&format!("ERROR {}: {why}\n", file.display()))
                    }
                    Err(why) => out.push_str(&format!("ERROR {runbook}: {case}: {why}\n")),
                }
            }
            out.push_str(&format!(
                "\n{passed} passed, {failed} failed, {broken} could not run\n"
            ));
            out
        }
        TestFormat::Github => {
            use crate::diagnostic::github::{escape_data, escape_property};
            let mut out = String::new();
            for (file, runbook, case, r) in &results {
                let problems = match r {
                    Ok(p) => p.clone(),
                    Err(why) => vec![format!("could not run: {why}")],
                };
                for p in problems {
                    out.push_str(&format!(
                        "::error file={},title={}::{}\n",
                        escape_property(&file.display().to_string()),
                        escape_property(&format!("{runbook}: {case}")),
                        escape_data(&p)
                    ));
                }
            }
            out
        }
        TestFormat::Junit => junit(&results, passed + failed + broken, failed, broken),
    };
    let _ = super::print_stdout(&text);
    if broken > 0 {
        exit_code::INVALID
    } else if failed > 0 {
        exit_code::FAILED
    } else {
        exit_code::OK
    }
}

/// One case's result: its file, runbook, name, and its unmet expectations (`Err`: it
/// could not run, and why).
type CaseResult = (PathBuf, String, String, Result<Vec<String>, String>);

/// JUnit XML: a testsuite per file, a testcase per case.
fn junit(results: &[CaseResult], tests: usize, failures: usize, errors: usize) -> String {
    let xml = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"opsctl test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n"
    );
    let mut files: Vec<&PathBuf> = results.iter().map(|r| &r.0).collect();
    files.dedup();
    for file in files {
        let cases: Vec<_> = results.iter().filter(|r| &r.0 == file).collect();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\">\n",
            xml(&file.display().to_string()),
            cases.len()
        ));
        for (_, runbook, case, r) in cases {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(runbook),
                xml(case)
            );
            match r {
                Ok(p) if p.is_empty() => out.push_str(&format!("{open}/>\n")),
                Ok(p) => out.push_str(&format!(
                    "{open}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    xml(p.first().map_or("", String::as_str)),
                    xml(&p.join("\n"))
                )),
                Err(why) => out.push_str(&format!(
                    "{open}>\n      <error message=\"{}\"/>\n    </testcase>\n",
                    xml(why)
                )),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `opsctl test --from-record RECORD`: a case made from a run — its params, what each
/// step produced (outputs, or the status of a step that errored or was cancelled), what
/// ran and was skipped, and how it ended — printed as YAML to add to NAME.test.yaml.
pub fn from_record(path: &Path) -> i32 {
    let record = match crate::report::record::read(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("opsctl test: {e}");
            return exit_code::INVALID;
        }
    };
    let summary = Summary::of(&record.events);
    let Some(run) = summary.run.clone() else {
        eprintln!("opsctl test: {}: no run in this record", path.display());
        return exit_code::INVALID;
    };
    let mut steps = serde_json::Map::new();
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    let mut statuses = serde_json::Map::new();
    for f in summary.top_level() {
        match f.status {
            StepStatus::Skipped => skipped.push(f.id.clone()),
            StepStatus::Ok | StepStatus::Warn | StepStatus::Fail => {
                ran.push(f.id.clone());
                steps.insert(f.id.clone(), serde_json::json!({"outputs": f.outputs}));
                statuses.insert(f.id.clone(), serde_json::json!(f.status));
            }
            StepStatus::Error | StepStatus::Cancelled => {
                ran.push(f.id.clone());
                steps.insert(
                    f.id.clone(),
                    serde_json::json!({"status": f.status, "message": f.message}),
                );
                statuses.insert(f.id.clone(), serde_json::json!(f.status));
            }
        }
    }
    let status = summary.end.map_or(RunStatus::Unfinished, |e| e.status);
    let case = serde_json::json!({
        "runbook": run.runbook,
        "cases": [{
            "name": format!("run {} in {} ({})", run.run_id, run.env, status.as_str()),
            "env": run.env,
            "params": run.params,
            "steps": steps,
            "expect": {"ran": ran, "skipped": skipped, "statuses": statuses, "status": status},
        }],
    });
    // JSON is YAML: the case reads as it is; reformat at will.
    let text = format!(
        "# A test case made from run {} ({}): add its case to {}.test.yaml.\n{}\n",
        run.run_id,
        path.display(),
        run.runbook,
        serde_json::to_string_pretty(&case).unwrap_or_default()
    );
    super::print_stdout(&text)
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        if let Ok(real) = std::fs::canonicalize(&d) {
            if !seen.insert(real) {
                continue;
            }
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if crate::library::is_test_file(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn runbook_of(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.trim_end_matches(".yaml")
        .trim_end_matches(".yml")
        .trim_end_matches(".test")
        .to_string()
}

/// Runs one case; `Ok(problems)` (empty: it passed), `Err` when it could not run.
async fn run_case(
    config: &crate::config::Config,
    library: &Library,
    runbook: &str,
    case: &Case,
) -> Result<Vec<String>, String> {
    let request = Request {
        runbook: runbook.to_string(),
        env: case.env.clone(),
        params: case
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::expr::text_of(v)))
            .collect(),
        ..Request::default()
    };
    let prepared = runner::prepare(config, library, &request).map_err(|diags| {
        diags
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let ids: Vec<String> = prepared
        .checked
        .runbook
        .steps
        .iter()
        .map(|s| s.id.clone())
        .collect();
    for id in case
        .steps
        .keys()
        .chain(&case.expect.ran)
        .chain(&case.expect.skipped)
    {
        let top = id.split('/').next().unwrap_or(id);
        if !ids.iter().any(|i| i == top) {
            return Err(format!("no step `{id}` in `{runbook}`"));
        }
    }
    let interact = Arc::new(Scripted {
        yes: case.answer != "no",
        asked: Mutex::new(Vec::new()),
    });
    let (collector, summary) = crate::report::summary::Collector::new();
    let settings = Settings {
        mode: Mode::Run,
        max_parallel: 64,
        run_id: format!("test-{}", crate::exec::new_run_id()),
        user: "opsctl-test".into(),
        interact: interact.clone(),
        reporters: vec![Box::new(collector)],
        cancel: CancellationToken::new(),
        lock: LockPolicy::None,
        givens: Some(Arc::new(case.steps.clone())),
    };
    let outcome = runner::execute(prepared, settings).await;
    let summary = summary.lock().map_err(|_| "internal error".to_string())?;
    let status_of = |id: &str| {
        summary
            .steps
            .iter()
            .find(|f| f.path == id)
            .map(|f| f.status)
    };
    let why_of = |id: &str| {
        summary
            .steps
            .iter()
            .find(|f| f.path == id)
            .and_then(|f| f.message.clone())
            .unwrap_or_default()
    };
    let mut problems = Vec::new();
    for id in &case.expect.ran {
        match status_of(id) {
            Some(s) if s != StepStatus::Skipped && s != StepStatus::Cancelled => {}
            Some(s) => problems.push(format!(
                "step `{id}` was expected to run but ended {} ({})",
                s.as_str(),
                why_of(id)
            )),
            None => problems.push(format!("step `{id}` was expected to run but never did")),
        }
    }
    for id in &case.expect.skipped {
        match status_of(id) {
            Some(StepStatus::Skipped) | None => {}
            Some(s) => problems.push(format!(
                "step `{id}` was expected to be skipped but ran and ended {} ({})",
                s.as_str(),
                why_of(id)
            )),
        }
    }
    for (id, want) in &case.expect.statuses {
        let got = status_of(id);
        if got != Some(*want) {
            problems.push(format!(
                "step `{id}` was expected to end {} but ended {} ({})",
                want.as_str(),
                got.map_or("never", StepStatus::as_str),
                why_of(id)
            ));
        }
    }
    let asked = interact.asked.lock().map(|a| a.clone()).unwrap_or_default();
    for id in &case.expect.asked {
        if !asked.contains(id) {
            problems.push(format!(
                "step `{id}` was expected to ask for a confirmation but did not"
            ));
        }
    }
    if let Some(want) = case.expect.status {
        if outcome.status != want {
            problems.push(format!(
                "the run was expected to end {} but ended {}",
                want.as_str(),
                outcome.status.as_str()
            ));
        }
    }
    Ok(problems)
}
