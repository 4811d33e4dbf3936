//! Builds a [`Runbook`] from its YAML tree (contract sections 1, 2 and 4).

use std::sync::Arc;

use regex::Regex;

use crate::actions::{self, spec::check_args};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::expr::{Expr, Template};
use crate::model::duration::parse_duration;
use crate::model::{
    ActionCall, Arg, ArgValue, Args, Capture, DEFAULT_TIMEOUT, Param, Retry, Runbook, Severity,
    Step,
};
use crate::rules::Rule;
use crate::source::{SourceFile, Span};
use crate::suggest;
use crate::yaml::{self, Node, Value};

use super::{Cx, Fields};

pub const TOP_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "severity",
    "tags",
    "params",
    "steps",
    "finally",
];
pub const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "doc",
    "needs",
    "when",
    "tags",
    "timeout",
    "retry",
    "confirm",
    "always",
    "expect",
    "warn_if",
    "fail_if",
    "capture",
    "foreach",
    "as",
    "max_parallel",
    "max",
];
const PARAM_KEYS: &[&str] = &[
    "default",
    "description",
    "required",
    "pattern",
    "example",
    "enum",
    "type",
];
const RETRY_KEYS: &[&str] = &["attempts", "delay", "until"];

static NAME_RE: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(r"^[a-z0-9]+(-[a-z0-9]+)*$").expect("static regex"));
static STEP_ID_RE: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_-]*$").expect("static regex"));
static PARAM_RE: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("static regex"));

/// Loads one runbook file. Returns the model when the file is structurally usable (it
/// may still carry errors in `diags`); `broken` lists ids of steps that could not be
/// built, so later checks do not report them as unknown.
pub fn load_runbook(
    file: &Arc<SourceFile>,
    registry: &actions::Registry,
    diags: &mut Diagnostics,
) -> Option<(Runbook, Vec<String>)> {
    let root = match yaml::parse(file) {
        Ok(n) => n,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let mut cx = Cx { file, diags };
    if root.is_null() {
        cx.error(Rule::MissingKey, "runbook file is empty", Span::at(0), "");
        return None;
    }
    let mut top = Fields::of(&mut cx, &root, "runbook")?;
    let stem = file.stem();

    let (name, name_span) = match top.take("name") {
        Some(n) => {
            let name = cx.string(n, "name").unwrap_or_default();
            if !name.is_empty() && !NAME_RE.is_match(&name) {
                cx.error(
                    Rule::InvalidValue,
                    format!("runbook name `{name}` is not kebab-case"),
                    n.span,
                    "use lowercase letters, digits and single hyphens",
                );
            } else if !name.is_empty() && name != stem {
                cx.push(
                    Diagnostic::error(
                        Rule::NameMismatch,
                        format!("runbook name `{name}` does not match its file name `{stem}`"),
                    )
                    .at(file, n.span, format!("the file is {stem}.yaml"))
                    .help(format!(
                        "rename the runbook to `{stem}` or the file to `{name}.yaml`"
                    )),
                );
            }
            (name, n.span)
        }
        None => {
            cx.error(Rule::MissingKey, "runbook has no `name`", Span::at(0), "");
            (stem.clone(), Span::at(0))
        }
    };
    let title = match top.take("title") {
        Some(n) => cx.text(n, "title").unwrap_or_default(),
        None => {
            cx.push(
                Diagnostic::error(Rule::MissingKey, "runbook has no `title`")
                    .at(file, name_span, "")
                    .help("add a one-line `title:` shown by `opsctl list`"),
            );
            String::new()
        }
    };
    let description = top
        .take("description")
        .and_then(|n| cx.text(n, "description"));
    let severity = top.take("severity").and_then(|n| {
        let s = cx.text(n, "severity")?;
        let sev = Severity::parse(&s);
        if sev.is_none() {
            cx.push(
                Diagnostic::error(
                    Rule::InvalidValue,
                    format!(
                        "severity `{s}` is not one of {}",
                        Severity::NAMES.join(", ")
                    ),
                )
                .at(file, n.span, "invalid severity")
                .help_opt(suggest::help(
                    &s.to_lowercase(),
                    Severity::NAMES.iter().copied(),
                )),
            );
        }
        sev
    });
    let tags = top
        .take("tags")
        .map(|n| cx.strings(n, "tags"))
        .unwrap_or_default();
    let params = top
        .take("params")
        .map(|n| load_params(&mut cx, n))
        .unwrap_or_default();
    let mut broken = Vec::new();
    let steps = match top.take("steps") {
        Some(n) => match &n.value {
            Value::Seq(items) if !items.is_empty() => items
                .iter()
                .filter_map(|s| load_step(&mut cx, registry, s, &mut broken))
                .collect(),
            Value::Seq(_) | Value::Null => {
                cx.error(
                    Rule::MissingKey,
                    "`steps` is empty",
                    n.span,
                    "add at least one step",
                );
                Vec::new()
            }
            _ => {
                cx.type_error(n, "steps", "a list of steps");
                Vec::new()
            }
        },
        None => {
            cx.error(Rule::MissingKey, "runbook has no `steps`", name_span, "");
            Vec::new()
        }
    };
    // `finally:` steps run after every other step, whatever happened (Ctrl-C included):
    // each is `always` and needs every step of `steps`.
    let mut steps: Vec<crate::model::Step> = steps;
    if let Some(n) = top.take("finally") {
        match &n.value {
            Value::Seq(items) => {
                let main: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
                for item in items {
                    if let Some(mut step) = load_step(&mut cx, registry, item, &mut broken) {
                        step.always = true;
                        step.finally = true;
                        for id in &main {
                            if !step.needs.iter().any(|(n, _)| n == id) {
                                step.needs.push((id.clone(), step.id_span));
                            }
                        }
                        steps.push(step);
                    }
                }
            }
            Value::Null => {}
            _ => cx.type_error(n, "finally", "a list of steps"),
        }
    }
    top.finish(&mut cx, "runbook", TOP_KEYS);
    // A step is about a kilobyte and the runbook lives as long as the run: the doubling
    // slack of `collect` (up to half again) would be held to the end.
    steps.shrink_to_fit();
    Some((
        Runbook {
            file: file.clone(),
            name,
            name_span,
            title,
            description,
            severity,
            tags,
            params,
            steps,
        },
        broken,
    ))
}

fn load_params(cx: &mut Cx<'_>, node: &Node) -> Vec<Param> {
    let Some(fields) = Fields::of(cx, node, "params") else {
        return Vec::new();
    };
    let mut params = Vec::new();
    for (name, key, value) in fields.all() {
        if !PARAM_RE.is_match(name) {
            cx.push(
                Diagnostic::error(
                    Rule::InvalidValue,
                    format!("param name `{name}` is not an identifier"),
                )
                .at(cx.file, key.span, "")
                .help(format!(
                    "use letters, digits and underscores so `params.{}` works",
                    name.replace('-', "_")
                )),
            );
        }
        let mut param = Param {
            name: name.to_string(),
            span: key.span,
            default: None,
            description: None,
            required: false,
            pattern: None,
            example: None,
            choices: None,
            ty: None,
        };
        if !value.is_null() {
            if let Some(mut f) = Fields::of(cx, value, &format!("param `{name}`")) {
                param.default = f.take("default").map(scalar_json);
                param.example = f.take("example").map(scalar_json);
                param.description = f
                    .take("description")
                    .and_then(|n| cx.text(n, "description"));
                param.required = f
                    .take("required")
                    .and_then(|n| cx.bool(n, "required"))
                    .unwrap_or(false);
                if let Some(p) = f.take("pattern") {
                    if let Some(text) = cx.string(p, "pattern") {
                        match crate::expr::regex(&text) {
                            Ok(re) => param.pattern = Some(re),
                            Err(e) => cx.error(
                                Rule::InvalidValue,
                                format!(
                                    "pattern of param `{name}` is not a valid regex: {}",
                                    first_line(&e.to_string())
                                ),
                                p.span,
                                "invalid regex",
                            ),
                        }
                    }
                }
                if let Some(t) = f.take("type") {
                    if let Some(text) = cx.string(t, "type") {
                        param.ty = crate::model::ParamType::parse(&text);
                        if param.ty.is_none() {
                            cx.error(
                                Rule::InvalidValue,
                                format!(
                                    "type `{text}` of param `{name}` is not one of {}",
                                    crate::model::ParamType::NAMES.join(", ")
                                ),
                                t.span,
                                "unknown type",
                            );
                        }
                    }
                }
                if let Some(e) = f.take("enum") {
                    match &e.value {
                        crate::yaml::Value::Seq(items) if !items.is_empty() => {
                            param.choices = Some(items.iter().map(scalar_json).collect());
                        }
                        _ => cx.error(
                            Rule::InvalidType,
                            format!("`enum` of param `{name}` must be a non-empty list of values"),
                            e.span,
                            "not a list",
                        ),
                    }
                }
                check_param_values(cx, &param, &f);
                f.finish(cx, &format!("param `{name}`"), PARAM_KEYS);
            }
        }
        params.push(param);
    }
    params
}

fn check_param_values(cx: &mut Cx<'_>, p: &Param, f: &Fields<'_>) {
    for (key, value) in [("default", &p.default), ("example", &p.example)] {
        let Some(v) = value else { continue };
        if let Err(why) = crate::params::check_declared(p, v) {
            let span = f.key_span(key).unwrap_or(p.span);
            cx.push(
                Diagnostic::error(
                    Rule::ParamExample,
                    format!("{key} of param `{}`: {why}", p.name),
                )
                .at(cx.file, span, ""),
            );
        }
    }
    if p.required && p.example.is_none() {
        cx.push(
            Diagnostic::error(
                Rule::ParamExample,
                format!("required param `{}` has no `example`", p.name),
            )
            .at(cx.file, p.span, "")
            .help("add `example:` so docs and `--dry-run --examples` can show a real value"),
        );
    }
    if let Some(re) = &p.pattern {
        for (key, value) in [("default", &p.default), ("example", &p.example)] {
            let Some(v) = value else { continue };
            let text = crate::expr::text_of(v);
            if !re.is_match(&text) {
                let span = f.key_span(key).unwrap_or(p.span);
                cx.push(
                    Diagnostic::error(
                        Rule::ParamExample,
                        format!(
                            "{key} `{text}` of param `{}` does not match its pattern `{}`",
                            p.name,
                            re.as_str()
                        ),
                    )
                    .at(cx.file, span, ""),
                );
            }
        }
    }
}

fn scalar_json(n: &Node) -> serde_json::Value {
    n.to_json()
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

fn load_step(
    cx: &mut Cx<'_>,
    registry: &actions::Registry,
    node: &Node,
    broken: &mut Vec<String>,
) -> Option<Step> {
    let mut f = Fields::of(cx, node, "step")?;
    let (id, id_span) = match f.take("id") {
        Some(n) => {
            let id = cx.text(n, "id").unwrap_or_default();
            if !STEP_ID_RE.is_match(&id) {
                cx.error(
                    Rule::InvalidValue,
                    format!("step id `{id}` must match [a-z][a-z0-9_-]*"),
                    n.span,
                    "invalid step id",
                );
            }
            (id, n.span)
        }
        None => {
            cx.push(
                Diagnostic::error(Rule::MissingKey, "step has no `id`")
                    .at(cx.file, node.span, "")
                    .help("every step needs a unique `id:` so others can refer to it"),
            );
            (String::new(), node.span)
        }
    };
    let name = f.take("name").and_then(|n| cx.text(n, "name"));
    let doc = f.take("doc").and_then(|n| cx.text(n, "doc"));
    let needs = f
        .take("needs")
        .map(|n| cx.string_list(n, "needs"))
        .unwrap_or_default();
    let when = f.take("when").and_then(|n| bare_expr(cx, n, "when"));
    let tags = f
        .take("tags")
        .map(|n| cx.strings(n, "tags"))
        .unwrap_or_default();
    let timeout = f
        .take("timeout")
        .and_then(|n| duration(cx, n, "timeout"))
        .unwrap_or(DEFAULT_TIMEOUT);
    let retry = f.take("retry").and_then(|n| load_retry(cx, n));
    let confirm = f.take("confirm").and_then(|n| cx.bool(n, "confirm"));
    let always = f
        .take("always")
        .and_then(|n| cx.bool(n, "always"))
        .unwrap_or(false);
    let foreach = load_foreach(cx, &mut f);
    let expect = f.take("expect").map(|n| expr_list(cx, n, "expect"));
    let warn_if = f
        .take("warn_if")
        .map(|n| expr_list(cx, n, "warn_if"))
        .unwrap_or_default();
    let fail_if = f
        .take("fail_if")
        .map(|n| expr_list(cx, n, "fail_if"))
        .unwrap_or_default();
    let capture = f
        .take("capture")
        .map(|n| load_capture(cx, n))
        .unwrap_or_default();

    // Whatever is left is the action key (exactly one) or unknown keys.
    let mut action: Option<(&'static dyn actions::Action, Span, &Node)> = None;
    let mut unknown_action_like = false;
    let candidates: Vec<&str> = STEP_KEYS.iter().copied().chain(registry.names()).collect();
    for (key, key_node, value) in f.remaining() {
        match registry.lookup(&key) {
            Some(a) => {
                f.mark(&key);
                if let Some((first, first_span, _)) = &action {
                    cx.push(
                        Diagnostic::error(
                            Rule::ActionCount,
                            format!(
                                "step `{id}` has two actions: `{}` and `{key}`",
                                first.spec().name
                            ),
                        )
                        .at(cx.file, key_node.span, "second action")
                        .also(cx.file, *first_span, "first action")
                        .help("a step does exactly one thing; split it into two steps"),
                    );
                } else {
                    action = Some((a, key_node.span, value));
                }
            }
            None => {
                if suggest::did_you_mean(&key, registry.names()).is_some() {
                    unknown_action_like = true;
                }
            }
        }
    }
    f.finish(cx, &format!("step `{id}`"), &candidates);

    let Some((action, key_span, args_node)) = action else {
        if !unknown_action_like {
            cx.push(
                Diagnostic::error(Rule::ActionCount, format!("step `{id}` has no action"))
                    .at(cx.file, id_span, "")
                    .help(format!(
                        "add exactly one action key, e.g. `http:`; actions: {}",
                        registry.names().collect::<Vec<_>>().join(", ")
                    )),
            );
        }
        if !id.is_empty() {
            broken.push(id);
        }
        return None;
    };
    let mut args = load_args(cx, args_node, action.spec().name);
    mark_shell_scripts(action.spec(), &mut args);
    check_args(action.spec(), &args, cx);
    action.check(&args, cx);

    if id.is_empty() {
        return None;
    }
    Some(Step {
        id,
        id_span,
        name,
        doc,
        needs,
        when,
        tags,
        timeout,
        retry,
        confirm,
        always,
        finally: false,
        foreach,
        action: ActionCall {
            action,
            key_span,
            args,
        },
        expect,
        warn_if,
        fail_if,
        capture,
    })
}

fn duration(cx: &mut Cx<'_>, n: &Node, what: &str) -> Option<std::time::Duration> {
    let text = cx.text(n, what)?;
    match parse_duration(&text) {
        Ok(d) if d.is_zero() => {
            cx.error(
                Rule::InvalidValue,
                format!("`{what}` must be longer than zero"),
                n.span,
                "zero duration",
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            cx.push(
                Diagnostic::error(
                    Rule::InvalidValue,
                    format!("`{what}` is not a valid duration: {e}"),
                )
                .at(cx.file, n.span, "invalid duration")
                .help("durations are a number and a unit: 500ms, 30s, 5m, 1h"),
            );
            None
        }
    }
}

fn load_retry(cx: &mut Cx<'_>, n: &Node) -> Option<Retry> {
    let mut f = Fields::of(cx, n, "retry")?;
    let mut retry = Retry {
        attempts: 3,
        delay: std::time::Duration::from_secs(1),
        until: None,
    };
    if let Some(a) = f.take("attempts") {
        match a.value {
            Value::Int(k) if (1..=1000).contains(&k) => retry.attempts = k as u32,
            _ => cx.error(
                Rule::InvalidValue,
                "`retry.attempts` must be an integer from 1 to 1000",
                a.span,
                "invalid attempts",
            ),
        }
    }
    if let Some(d) = f.take("delay") {
        let text = cx.text(d, "retry.delay");
        if let Some(text) = text {
            match parse_duration(&text) {
                Ok(v) => retry.delay = v,
                Err(e) => cx.error(
                    Rule::InvalidValue,
                    format!("`retry.delay` is not a valid duration: {e}"),
                    d.span,
                    "invalid duration",
                ),
            }
        }
    }
    retry.until = f
        .take("until")
        .and_then(|u| bare_expr(cx, u, "retry.until"));
    f.finish(cx, "retry", RETRY_KEYS);
    Some(retry)
}

fn load_capture(cx: &mut Cx<'_>, n: &Node) -> Vec<Capture> {
    let Some(f) = Fields::of(cx, n, "capture") else {
        return Vec::new();
    };
    f.all()
        .filter_map(|(name, key, value)| {
            if !PARAM_RE.is_match(name) {
                cx.error(
                    Rule::InvalidValue,
                    format!("capture name `{name}` is not an identifier"),
                    key.span,
                    "use letters, digits and underscores",
                );
            }
            bare_expr(cx, value, &format!("capture.{name}")).map(|expr| Capture {
                name: name.to_string(),
                span: key.span,
                expr,
            })
        })
        .collect()
}

fn expr_list(cx: &mut Cx<'_>, n: &Node, what: &str) -> Vec<Expr> {
    match &n.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| bare_expr(cx, i, what))
            .collect(),
        Value::Null => Vec::new(),
        _ => bare_expr(cx, n, what).into_iter().collect(),
    }
}

/// A condition: a bare expression (a string that is exactly `${{ e }}` is unwrapped).
/// `foreach`, `as`, `max_parallel`, `max` of a step (the last three only with `foreach`).
fn load_foreach(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<crate::model::Foreach> {
    let list = f.take("foreach");
    let name = f.take("as");
    let max_parallel = f.take("max_parallel");
    let max = f.take("max");
    let Some(list) = list else {
        for (key, n) in [("as", name), ("max_parallel", max_parallel), ("max", max)] {
            if let Some(n) = n {
                cx.error(
                    Rule::InvalidValue,
                    format!("`{key}` goes with `foreach`"),
                    n.span,
                    "no foreach here",
                );
            }
        }
        return None;
    };
    let list = bare_expr(cx, list, "foreach")?;
    let name = match name {
        Some(n) => {
            let text = cx.string(n, "as")?;
            if !PARAM_RE.is_match(&text)
                || ["params", "vars", "run", "steps", "outputs"].contains(&text.as_str())
            {
                cx.error(
                    Rule::InvalidValue,
                    format!("`as: {text}` must be an identifier other than params, vars, run, steps and outputs"),
                    n.span,
                    "invalid name",
                );
                return None;
            }
            text
        }
        None => "item".to_string(),
    };
    let mut count = |n: Option<&Node>, what: &str| -> Option<usize> {
        let n = n?;
        match n.value {
            Value::Int(v) if (1..=100_000).contains(&v) => usize::try_from(v).ok(),
            _ => {
                cx.error(
                    Rule::InvalidValue,
                    format!("`{what}` must be a positive integer"),
                    n.span,
                    "invalid",
                );
                None
            }
        }
    };
    let max_parallel = count(max_parallel, "max_parallel").unwrap_or(10);
    let max = count(max, "max");
    Some(crate::model::Foreach {
        list,
        name,
        max_parallel,
        max,
    })
}

fn bare_expr(cx: &mut Cx<'_>, n: &Node, what: &str) -> Option<Expr> {
    let text = match &n.value {
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(_) | Value::Float(_) => n.scalar_text().unwrap_or_default(),
        _ => {
            cx.type_error(n, what, "an expression string");
            return None;
        }
    };
    let inner = text
        .trim()
        .strip_prefix("${{")
        .and_then(|r| r.strip_suffix("}}"))
        .filter(|r| !r.contains("${{"))
        .map(str::to_string)
        .unwrap_or(text);
    let node_text = cx.file.slice(n.span);
    let (span, exact) = match node_text.find(inner.as_str()) {
        Some(pos) => (Span::at(n.span.start + pos), true),
        None => (n.span, false),
    };
    match Expr::parse(&inner, span, exact) {
        Ok(e) => Some(e),
        Err(e) => {
            cx.push(
                Diagnostic::error(Rule::ExpressionSyntax, format!("`{what}`: {}", e.message))
                    .at(cx.file, e.span, "here")
                    .help("expressions are Jinja-style: `status == 200 and latency_ms < 500`"),
            );
            None
        }
    }
}

fn load_args(cx: &mut Cx<'_>, node: &Node, action: &str) -> Args {
    if node.is_null() {
        return Args {
            entries: Vec::new(),
            span: node.span,
        };
    }
    let Some(f) = Fields::of(cx, node, &format!("arguments of `{action}`")) else {
        return Args::default();
    };
    let entries = f
        .all()
        .map(|(k, key_node, v)| Arg {
            key: k.to_string(),
            key_span: key_node.span,
            value: arg_value(cx, v, k),
        })
        .collect();
    Args {
        entries,
        span: f.span,
    }
}

/// Templated shell scripts render differently: their values become environment
/// variables instead of script text.
fn mark_shell_scripts(spec: &crate::actions::ActionSpec, args: &mut Args) {
    for arg in &mut args.entries {
        let is_script = spec
            .arg(&arg.key)
            .is_some_and(|a| matches!(a.ty, crate::actions::ArgType::ShellScript));
        if !is_script {
            continue;
        }
        let placeholder = ArgValue::Lit {
            value: serde_json::Value::Null,
            span: arg.value.span(),
        };
        arg.value = match std::mem::replace(&mut arg.value, placeholder) {
            ArgValue::Tmpl { template, span } => ArgValue::Shell { template, span },
            other => other,
        };
    }
}

fn arg_value(cx: &mut Cx<'_>, n: &Node, path: &str) -> ArgValue {
    match &n.value {
        Value::Str(s) if s.contains("${{") => match Template::parse(s, n.span, cx.file) {
            Ok(template) => ArgValue::Tmpl {
                template,
                span: n.span,
            },
            Err(errors) => {
                for e in errors {
                    cx.push(
                        Diagnostic::error(
                            Rule::ExpressionSyntax,
                            format!("argument `{path}`: {}", e.message),
                        )
                        .at(cx.file, e.span, "here"),
                    );
                }
                ArgValue::Lit {
                    value: serde_json::Value::String(s.clone()),
                    span: n.span,
                }
            }
        },
        Value::Seq(items) => ArgValue::List {
            items: items
                .iter()
                .enumerate()
                .map(|(i, item)| arg_value(cx, item, &format!("{path}[{i}]")))
                .collect(),
            span: n.span,
        },
        Value::Map(_) => match Fields::of(cx, n, "mapping") {
            Some(f) => ArgValue::Map {
                entries: f
                    .all()
                    .map(|(k, kn, v)| Arg {
                        key: k.to_string(),
                        key_span: kn.span,
                        value: arg_value(cx, v, &format!("{path}.{k}")),
                    })
                    .collect(),
                span: n.span,
            },
            None => ArgValue::Lit {
                value: serde_json::Value::Null,
                span: n.span,
            },
        },
        _ => ArgValue::Lit {
            value: n.to_json(),
            span: n.span,
        },
    }
}
