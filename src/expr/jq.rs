//! The `jq(...)` filter of expressions, through jaq: `json | jq(".items | length")`.
//!
//! jaq has no limit of its own on time or recursion, so a program runs on a thread of its
//! own with a large stack, and the caller stops waiting after [`TIME_LIMIT`]. User
//! definitions (`def f: ...;`) are refused: a recursive one could exhaust any stack.

use std::time::Duration;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// How long an evaluation may take before the step stops waiting for it.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);
/// Stack of the evaluation thread (virtual: only what is used is committed).
const STACK_BYTES: usize = 256 * 1024 * 1024;

/// Compiles a jq program; the error is a one-line description.
pub fn compile(program: &str) -> Result<(), String> {
    compiled(program).map(|_| ())
}

/// Refuses `def` outside string literals.
fn check_no_defs(program: &str) -> Result<(), String> {
    let mut outside = String::with_capacity(program.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in program.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            outside.push(' ');
        } else {
            if c == '"' {
                in_string = true;
            }
            outside.push(c);
        }
    }
    let has_def = outside
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.'))
        .any(|word| word == "def");
    if has_def {
        Err(format!(
            "invalid jq program `{program}`: `def` is not allowed in runbook expressions (a recursive definition could exhaust the stack)"
        ))
    } else {
        Ok(())
    }
}

fn compiled(program: &str) -> Result<Filter, String> {
    check_no_defs(program)?;
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: program,
                path: (),
            },
        )
        .map_err(|errs| {
            format!(
                "invalid jq program `{program}`: {}",
                describe_load_errors(&errs)
            )
        })?;
    let filter = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let names: Vec<String> = errs
                .iter()
                .flat_map(|(_, es)| es.iter().map(|(name, _)| format!("`{name}`")))
                .collect();
            format!(
                "invalid jq program `{program}`: undefined {}",
                names.join(", ")
            )
        })?;
    Ok(filter)
}

fn describe_load_errors<E: std::fmt::Debug>(errs: &E) -> String {
    let text = format!("{errs:?}");
    if text.contains("Lex") {
        "syntax error".to_string()
    } else if text.contains("Parse") {
        "parse error".to_string()
    } else {
        "cannot load".to_string()
    }
}

/// Runs `program` on `input`. One result comes back as itself, several as a list,
/// none as `null`.
pub fn run(program: &str, input: &serde_json::Value) -> Result<serde_json::Value, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (owned_program, owned_input) = (program.to_string(), input.clone());
    std::thread::Builder::new()
        .name("jq".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(run_here(&owned_program, &owned_input));
        })
        .map_err(|e| format!("jq `{program}`: cannot start: {e}"))?;
    match rx.recv_timeout(TIME_LIMIT) {
        Ok(result) => result,
        Err(_) => Err(format!(
            "jq `{program}` did not finish within {}s",
            TIME_LIMIT.as_secs()
        )),
    }
}

fn run_here(program: &str, input: &serde_json::Value) -> Result<serde_json::Value, String> {
    let filter = compiled(program)?;
    let text = serde_json::to_string(input).map_err(|e| e.to_string())?;
    let val = jaq_json::read::parse_single(text.as_bytes())
        .map_err(|e| format!("jq input is not JSON: {e}"))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut results = Vec::new();
    for out in filter.id.run((ctx, val)).map(unwrap_valr) {
        let v = out.map_err(|e| format!("jq `{program}`: {e}"))?;
        let json: serde_json::Value = serde_json::from_str(&v.to_string())
            .map_err(|e| format!("jq `{program}` produced a value that is not JSON: {e}"))?;
        results.push(json);
        if results.len() > 100_000 {
            return Err(format!("jq `{program}` produced too many results"));
        }
    }
    Ok(match results.len() {
        0 => serde_json::Value::Null,
        1 => results.pop().unwrap_or_default(),
        _ => serde_json::Value::Array(results),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_filters() {
        let input = json!({"items": [{"ready": true}, {"ready": false}, {"ready": true}]});
        assert_eq!(
            run(".items | map(select(.ready)) | length", &input).unwrap(),
            json!(2)
        );
        assert_eq!(
            run(".items[].ready", &input).unwrap(),
            json!([true, false, true])
        );
        assert_eq!(run("empty", &input).unwrap(), json!(null));
    }

    #[test]
    fn refuses_definitions_and_stops_waiting_for_endless_programs() {
        assert!(
            compile("def f: [f]; f")
                .unwrap_err()
                .contains("`def` is not allowed")
        );
        assert!(compile("\"def x\" | length").is_ok());
        let err = run("last(range(1e15))", &json!(null)).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
    }

    #[test]
    fn reports_bad_programs() {
        assert!(compile(".items | map(").is_err());
        assert!(compile("nosuchfn(1)").is_err());
        assert!(compile(".a | length").is_ok());
    }
}
