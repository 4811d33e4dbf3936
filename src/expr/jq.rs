//! The `jq(...)` filter of expressions, through jaq: `json | jq(".items | length")`.
//!
//! jaq has no limit of its own on time or recursion, so:
//! - a program runs on a thread of its own with a large stack;
//! - every construct that can go on forever (`repeat`, `recurse`, `while`, `until`,
//!   `range`) is redefined to burn **fuel** at each turn, and stops when the fuel is gone
//!   or when the caller has given up (a stop flag it sets), so no evaluation outlives
//!   its caller for long;
//! - the caller waits at most the time its step has left ([`with_budget`]) or
//!   [`TIME_LIMIT`], without holding up the async runtime's other tasks;
//! - user definitions (`def f: ...;`) are refused: a recursive one could exhaust any stack.
//!
//! Nothing static (lint, show, graph, dry run) evaluates jq; lint only compiles it.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// How long an evaluation may take at most (less when its step has less time left).
pub const TIME_LIMIT: Duration = Duration::from_secs(10);
/// Turns of `repeat`/`recurse`/`while`/`until`/`range` one evaluation may take.
pub const FUEL: u64 = 20_000_000;

/// The endless-capable builtins, redefined to take fuel at each turn (loaded after the
/// standard definitions, so programs see these).
const FUELED_DEFS: &str = r#"
def repeat(f): def rec: __fuel | (f, rec); rec;
def recurse(f): def rec: __fuel | (., (f | rec)); rec;
def recurse: recurse(.[]?);
def recurse(f; cond): recurse(f | select(cond));
def while(cond; update): def rec: __fuel | if cond then ., (update | rec) else empty end; rec;
def until(cond; update): def rec: __fuel | if cond then . else update | rec end; rec;
def range($from; $upto; $by): $from |
  if $by > 0 then while(. < $upto; . + $by)
  elif $by < 0 then while(. > $upto; . + $by)
  else while(. != $upto; . + $by) end;
def range($from; $upto): range($from; $upto; 1);
def range($upto): range(0; $upto);
"#;

thread_local! {
    /// Fuel left to the evaluation on this (jq) thread.
    static FUEL_LEFT: Cell<u64> = const { Cell::new(0) };
    /// Set by the caller when it stops waiting.
    static STOP: std::cell::RefCell<Option<Arc<AtomicBool>>> = const { std::cell::RefCell::new(None) };
    /// On the caller's thread: the latest instant an evaluation may end (its step's
    /// deadline).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with jq evaluations bounded by `deadline` (the step's), on this thread.
pub fn with_budget<T>(deadline: Instant, f: impl FnOnce() -> T) -> T {
    let before = DEADLINE.with(|d| d.replace(Some(deadline)));
    let out = f();
    DEADLINE.with(|d| d.set(before));
    out
}

/// The native `__fuel` filter: passes its input on, or fails once the fuel is gone or
/// the caller stopped waiting.
fn fuel_fun<D: jaq_core::DataT>() -> jaq_core::native::Fun<D>
where
    for<'a> D::V<'a>: jaq_core::ValT,
{
    (
        "__fuel",
        jaq_core::native::v(0),
        jaq_core::Native::new(fuel::<D>),
    )
}

fn fuel<'a, D: jaq_core::DataT>(cv: jaq_core::Cv<'a, D>) -> jaq_core::ValXs<'a, D::V<'a>>
where
    for<'b> D::V<'b>: jaq_core::ValT,
{
    let stopped = STOP.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    });
    let left = FUEL_LEFT.with(|f| {
        let n = f.get().saturating_sub(1);
        f.set(n);
        n
    });
    let result = if stopped {
        Err(jaq_core::Error::str("stopped: the step ran out of time"))
    } else if left == 0 {
        Err(jaq_core::Error::str(format!(
            "ran out of fuel after {FUEL} turns (an endless `repeat`/`recurse`/`while`/`range`?)"
        )))
    } else {
        Ok(cv.1)
    };
    jaq_core::native::bome(result)
}
/// Stack of the evaluation thread (virtual: only what is used is committed).
const STACK_BYTES: usize = 256 * 1024 * 1024;

/// Compiles a jq program; the error is a one-line description. Each distinct program is
/// compiled once per process (jaq compiles its standard definitions with every program,
/// and a library repeats the same few programs in many captures).
pub fn compile(program: &str) -> Result<(), String> {
    static CHECKED: super::Memo<Result<(), String>> = super::Memo::new();
    CHECKED.get_or(program, || compiled(program).map(|_| ()))
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
    let fueled = jaq_core::load::parse(FUELED_DEFS, |p| p.defs())
        .ok_or_else(|| "internal error: the fueled jq definitions do not parse".to_string())?;
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(fueled);
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .chain(std::iter::once(fuel_fun()));
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
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    std::thread::Builder::new()
        .name("jq".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            FUEL_LEFT.with(|f| f.set(FUEL));
            STOP.with(|s| *s.borrow_mut() = Some(thread_stop));
            let _ = tx.send(run_here(&owned_program, &owned_input));
        })
        .map_err(|e| format!("jq `{program}`: cannot start: {e}"))?;
    let limit = DEADLINE.with(Cell::get).map_or(TIME_LIMIT, |d| {
        d.saturating_duration_since(Instant::now()).min(TIME_LIMIT)
    });
    // Waiting inside the async runtime must not hold up its other tasks.
    let wait = || rx.recv_timeout(limit);
    let waited = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    };
    match waited {
        Ok(result) => result,
        Err(_) => {
            // The evaluation stops at its next turn.
            stop.store(true, Ordering::Relaxed);
            Err(format!(
                "jq `{program}` did not finish within {:.1}s",
                limit.as_secs_f64()
            ))
        }
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
        let deadline = Instant::now() + Duration::from_millis(300);
        let started = Instant::now();
        let err = with_budget(deadline, || run("last(repeat(1))", &json!(null))).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // Without a deadline the fuel ends it.
        let err = run("last(range(1e15))", &json!(null)).unwrap_err();
        assert!(
            err.contains("fuel") || err.contains("did not finish"),
            "{err}"
        );
        assert_eq!(
            run("[limit(3; repeat(1))]", &json!(null)).unwrap(),
            json!([1, 1, 1])
        );
        assert_eq!(run("[range(3)]", &json!(null)).unwrap(), json!([0, 1, 2]));
        assert_eq!(
            run("[range(0; 10; 3)]", &json!(null)).unwrap(),
            json!([0, 3, 6, 9])
        );
        assert_eq!(
            run("[1 | until(. > 4; . * 2)]", &json!(null)).unwrap(),
            json!([8])
        );
    }

    #[test]
    fn reports_bad_programs() {
        assert!(compile(".items | map(").is_err());
        assert!(compile("nosuchfn(1)").is_err());
        assert!(compile(".a | length").is_ok());
    }
}
