//! The `jq(...)` filter of expressions, through jaq: `json | jq(".items | length")`.
//!
//! Programs are compiled once per thread and cached, so a filter used in a hot
//! assertion is not re-parsed on every evaluation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

thread_local! {
    static CACHE: RefCell<HashMap<String, Rc<Filter>>> = RefCell::new(HashMap::new());
}

/// Compiles a jq program; the error is a one-line description.
pub fn compile(program: &str) -> Result<(), String> {
    compiled(program).map(|_| ())
}

fn compiled(program: &str) -> Result<Rc<Filter>, String> {
    if let Some(f) = CACHE.with(|c| c.borrow().get(program).cloned()) {
        return Ok(f);
    }
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
    let filter = Rc::new(filter);
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(program.to_string(), filter.clone());
    });
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
    fn reports_bad_programs() {
        assert!(compile(".items | map(").is_err());
        assert!(compile("nosuchfn(1)").is_err());
        assert!(compile(".a | length").is_ok());
    }
}
