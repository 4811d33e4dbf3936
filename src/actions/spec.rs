//! Action schemas: the arguments each action takes (types, required, enums), the outputs
//! it produces, and the schema check lint runs on a step's literal arguments.

use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::loader::Cx;
use crate::model::duration::parse_duration;
use crate::model::{ArgValue, Args};
use crate::rules::Rule;
use crate::suggest;

/// The static description of an action.
pub struct ActionSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub args: &'static [ArgSpec],
    pub outputs: &'static [OutputSpec],
    /// Groups of arguments of which at most one may be given (exactly one if `required`).
    pub exclusive: &'static [Exclusive],
    /// When the action changes something, in words (docs, `show`).
    pub mutating: &'static str,
    /// What `expect` defaults to, in words.
    pub default_expect: &'static str,
}

impl ActionSpec {
    pub fn arg(&self, name: &str) -> Option<&ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }

    pub fn has_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o.name == name)
    }

    pub fn output_names(&self) -> impl Iterator<Item = &'static str> {
        self.outputs.iter().map(|o| o.name)
    }
}

pub struct ArgSpec {
    pub name: &'static str,
    pub ty: ArgType,
    pub required: bool,
    pub doc: &'static str,
}

pub struct OutputSpec {
    pub name: &'static str,
    pub doc: &'static str,
}

pub struct Exclusive {
    pub names: &'static [&'static str],
    pub required: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum ArgType {
    Str,
    /// A script for `sh -c`: values inserted with `${{ }}` are passed as environment
    /// variables, never pasted into the script text.
    ShellScript,
    Int,
    Number,
    Bool,
    Duration,
    Enum(&'static [&'static str]),
    StrList,
    /// A program and its arguments: a command line, readable by every user of the machine
    /// (`ps`, `/proc/PID/cmdline`), so it may never hold a secret (lint X009).
    Argv,
    /// A mapping of names to scalars (headers, env, labels).
    StrMap,
    /// Any mapping (annotations with null values, JSON objects).
    Map,
    /// Any list.
    List,
    /// Any JSON value (request bodies, query params).
    Any,
    /// An integer or a string such as `"+2"` or `"x2"` (k8s.scale replicas).
    IntOrStr,
    /// A mapping with these keys only (`auth: {bearer_env: VAR}`).
    Keys(&'static [&'static str]),
}

impl ArgType {
    /// How the type reads in messages and docs.
    pub fn describe(self) -> String {
        match self {
            ArgType::Str => "a string".into(),
            ArgType::ShellScript => "a shell script (string)".into(),
            ArgType::Int => "an integer".into(),
            ArgType::Number => "a number".into(),
            ArgType::Bool => "true or false".into(),
            ArgType::Duration => "a duration (e.g. 30s)".into(),
            ArgType::Enum(values) => format!("one of {}", values.join(", ")),
            ArgType::StrList => "a list of strings".into(),
            ArgType::Argv => "a command line (a list of strings, no secret)".into(),
            ArgType::StrMap => "a mapping of names to values".into(),
            ArgType::Map => "a mapping".into(),
            ArgType::List => "a list".into(),
            ArgType::Any => "any value".into(),
            ArgType::IntOrStr => "an integer or a string".into(),
            ArgType::Keys(keys) => format!("a mapping with {}", keys.join(", ")),
        }
    }

    /// JSON Schema for one argument of this type (expressions allowed where a string fits).
    pub fn json_schema(self) -> Value {
        use serde_json::json;
        let expr = json!({"type": "string", "pattern": "\\$\\{\\{"});
        match self {
            ArgType::Str | ArgType::Duration | ArgType::ShellScript => json!({"type": "string"}),
            ArgType::Int => json!({"anyOf": [{"type": "integer"}, expr]}),
            ArgType::Number => json!({"anyOf": [{"type": "number"}, expr]}),
            ArgType::Bool => json!({"anyOf": [{"type": "boolean"}, expr]}),
            ArgType::Enum(values) => json!({"anyOf": [{"enum": values}, expr]}),
            ArgType::StrList | ArgType::Argv => {
                json!({"anyOf": [{"type": "array", "items": {"type": ["string", "number", "boolean"]}}, expr]})
            }
            ArgType::StrMap => {
                json!({"anyOf": [{"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}, expr]})
            }
            ArgType::Map => json!({"anyOf": [{"type": "object"}, expr]}),
            ArgType::List => json!({"anyOf": [{"type": "array"}, expr]}),
            ArgType::Any => json!({}),
            ArgType::IntOrStr => json!({"type": ["integer", "string"]}),
            ArgType::Keys(keys) => json!({
                "type": "object",
                "additionalProperties": false,
                "properties": keys.iter().map(|k| (k.to_string(), json!({"type": "string"}))).collect::<serde_json::Map<_, _>>(),
            }),
        }
    }
}

/// Checks a step's arguments against the action's schema; every problem is reported.
pub fn check_args(spec: &ActionSpec, args: &Args, cx: &mut Cx<'_>) {
    let known: Vec<&str> = spec.args.iter().map(|a| a.name).collect();
    for arg in &args.entries {
        let Some(arg_spec) = spec.arg(&arg.key) else {
            let help = suggest::help(&arg.key, known.iter().copied())
                .unwrap_or_else(|| format!("`{}` takes: {}", spec.name, known.join(", ")));
            cx.push(
                Diagnostic::error(
                    Rule::UnknownArgument,
                    format!("unknown argument `{}` for action `{}`", arg.key, spec.name),
                )
                .at(cx.file, arg.key_span, "unknown argument")
                .help(help),
            );
            continue;
        };
        check_type(spec, arg_spec, &arg.value, cx);
    }
    for a in spec.args.iter().filter(|a| a.required) {
        if args.get(a.name).is_none() {
            cx.push(
                Diagnostic::error(
                    Rule::MissingArgument,
                    format!("action `{}` needs the argument `{}`", spec.name, a.name),
                )
                .at(cx.file, args.span, format!("`{}` is missing", a.name))
                .help(format!("`{}`: {}", a.name, a.doc)),
            );
        }
    }
    for group in spec.exclusive {
        let given: Vec<&str> = group
            .names
            .iter()
            .copied()
            .filter(|n| args.get(n).is_some())
            .collect();
        let names = group
            .names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        if given.len() > 1 {
            let span = args.get(given[1]).map_or(args.span, |a| a.key_span);
            cx.push(
                Diagnostic::error(
                    Rule::InvalidArgument,
                    format!("action `{}` takes {names}, not both", spec.name),
                )
                .at(cx.file, span, "conflicts with an earlier argument"),
            );
        } else if given.is_empty() && group.required {
            cx.push(
                Diagnostic::error(
                    Rule::MissingArgument,
                    format!("action `{}` needs {names}", spec.name),
                )
                .at(cx.file, args.span, "missing"),
            );
        }
    }
}

/// A literal empty string or list where the action needs something (`command: []`).
pub fn check_not_empty(spec: &ActionSpec, args: &Args, key: &str, cx: &mut Cx<'_>) {
    let Some(arg) = args.get(key) else { return };
    let empty = match arg.value.literal() {
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    };
    if empty {
        cx.error(
            Rule::InvalidArgument,
            format!("`{key}` of `{}` is empty", spec.name),
            arg.value.span(),
            "empty",
        );
    }
}

fn check_type(spec: &ActionSpec, arg_spec: &ArgSpec, value: &ArgValue, cx: &mut Cx<'_>) {
    // Expressions are typed at run time; a string with `${{ }}` fits anywhere.
    if value.is_template() {
        return;
    }
    if let (ArgType::Keys(keys), ArgValue::Map { entries, .. }) = (arg_spec.ty, value) {
        for e in entries.iter().filter(|e| !keys.contains(&e.key.as_str())) {
            cx.push(
                Diagnostic::error(
                    Rule::UnknownArgument,
                    format!(
                        "unknown key `{}` in `{}` of `{}`",
                        e.key, arg_spec.name, spec.name
                    ),
                )
                .at(cx.file, e.key_span, "unknown key")
                .help(
                    suggest::help(&e.key, keys.iter().copied()).unwrap_or_else(|| {
                        format!("`{}` takes: {}", arg_spec.name, keys.join(", "))
                    }),
                ),
            );
        }
        return;
    }
    let bad = |cx: &mut Cx<'_>, detail: String, help: Option<String>| {
        cx.push(
            Diagnostic::error(
                Rule::InvalidArgument,
                format!("argument `{}` of `{}` {detail}", arg_spec.name, spec.name),
            )
            .at(
                cx.file,
                value.span(),
                format!("expected {}", arg_spec.ty.describe()),
            )
            .help_opt(help),
        );
    };
    let literal = value.literal();
    let ok = match (arg_spec.ty, &literal) {
        (_, None) => matches!(
            arg_spec.ty,
            ArgType::Any
                | ArgType::Map
                | ArgType::List
                | ArgType::StrList
                | ArgType::Argv
                | ArgType::StrMap
                | ArgType::Keys(_)
        ),
        (ArgType::Str, Some(v)) => v.is_string() || v.is_number() || v.is_boolean(),
        (ArgType::ShellScript, Some(v)) => v.is_string(),
        (ArgType::Int, Some(v)) => v.is_i64() || v.is_u64(),
        (ArgType::Number, Some(v)) => v.is_number(),
        (ArgType::Bool, Some(v)) => v.is_boolean(),
        (ArgType::Duration, Some(Value::String(s))) => match parse_duration(s) {
            Ok(_) => true,
            Err(e) => {
                bad(cx, format!("is not a valid duration: {e}"), None);
                return;
            }
        },
        (ArgType::Duration, Some(_)) => false,
        (ArgType::Enum(values), Some(Value::String(s))) => {
            if values.contains(&s.as_str()) {
                true
            } else {
                let help = suggest::help(s, values.iter().copied())
                    .or_else(|| Some(format!("allowed: {}", values.join(", "))));
                bad(
                    cx,
                    format!("must be one of {}, found `{s}`", values.join(", ")),
                    help,
                );
                return;
            }
        }
        (ArgType::Enum(_), Some(_)) => false,
        (ArgType::StrList | ArgType::Argv, Some(Value::Array(items))) => items
            .iter()
            .all(|i| i.is_string() || i.is_number() || i.is_boolean()),
        (ArgType::StrList | ArgType::Argv, Some(_)) => false,
        (ArgType::StrMap, Some(Value::Object(m))) => {
            m.values().all(|v| !v.is_array() && !v.is_object())
        }
        (ArgType::StrMap, Some(_)) => false,
        (ArgType::Map, Some(v)) => v.is_object(),
        (ArgType::List, Some(v)) => v.is_array(),
        (ArgType::Any, Some(_)) => true,
        (ArgType::IntOrStr, Some(v)) => v.is_i64() || v.is_u64() || v.is_string(),
        (ArgType::Keys(_), Some(v)) => v.is_object(),
    };
    if !ok {
        bad(
            cx,
            format!("must be {}, found {}", arg_spec.ty.describe(), value.kind()),
            None,
        );
    }
}

/// How a Rust argument type reads for lint, the JSON Schema and the docs: each action's
/// arguments are one typed struct, and its table ([`ArgsSchema::ARGS`]) comes from the
/// field types through this trait.
pub trait ArgKind {
    const TY: ArgType;
}

/// An action's typed arguments, with the table lint, schema, `show` and the docs read.
pub trait ArgsSchema {
    const ARGS: &'static [ArgSpec];
}

impl ArgKind for String {
    const TY: ArgType = ArgType::Str;
}
impl<T: ArgKind> ArgKind for Option<T> {
    const TY: ArgType = T::TY;
}
impl ArgKind for bool {
    const TY: ArgType = ArgType::Bool;
}
impl ArgKind for f64 {
    const TY: ArgType = ArgType::Number;
}
impl ArgKind for Value {
    const TY: ArgType = ArgType::Any;
}
impl ArgKind for serde_json::Map<String, Value> {
    const TY: ArgType = ArgType::Map;
}
impl ArgKind for Vec<Value> {
    const TY: ArgType = ArgType::List;
}

/// An integer; a numeric string (a templated param) is accepted too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Int(pub i64);

impl ArgKind for Int {
    const TY: ArgType = ArgType::Int;
}

impl<'de> serde::Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .map(Int)
                .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
            Value::String(s) => s
                .trim()
                .parse()
                .map(Int)
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer"))),
            other => Err(serde::de::Error::custom(format!(
                "expected an integer, found {other}"
            ))),
        }
    }
}

/// A list of strings (numbers and booleans are taken as their text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrList(pub Vec<String>);

impl ArgKind for StrList {
    const TY: ArgType = ArgType::StrList;
}

impl<'de> serde::Deserialize<'de> for StrList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StrList, D::Error> {
        let items = Vec::<Value>::deserialize(d)?;
        items
            .into_iter()
            .map(|v| match v {
                Value::Array(_) | Value::Object(_) => Err(serde::de::Error::custom(format!(
                    "expected a string, found {v}"
                ))),
                other => Ok(crate::expr::text_of(&other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(StrList)
    }
}

/// A command line: a program and its arguments (as [`StrList`]). The one argument type
/// that lint (X009) and the action itself keep secrets out of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

impl ArgKind for Argv {
    const TY: ArgType = ArgType::Argv;
}

impl<'de> serde::Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Argv, D::Error> {
        StrList::deserialize(d).map(|l| Argv(l.0))
    }
}

impl Argv {
    /// Refuses a command line that holds a secret the run knows (a generated secret, a
    /// password from a URL, a credential header): a command line is readable by every
    /// user of the machine. Lint catches the written forms (X009); this catches the rest.
    pub fn check_no_secret(
        &self,
        action: &str,
        redactor: &crate::redact::Redactor,
    ) -> Result<(), super::ActionError> {
        match self.0.iter().position(|a| redactor.contains_secret(a)) {
            None => Ok(()),
            Some(i) => Err(super::ActionError::InvalidArgs(format!(
                "{action}: argument {i} of `command` holds a secret; a command line is readable by every user of the machine (ps, /proc) — pass it through `env:` or `stdin:`"
            ))),
        }
    }
}

/// A mapping of names to scalar values (headers, env, labels), values as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrMap(pub Vec<(String, String)>);

impl ArgKind for StrMap {
    const TY: ArgType = ArgType::StrMap;
}

impl<'de> serde::Deserialize<'de> for StrMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StrMap, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        map.into_iter()
            .map(|(k, v)| match v {
                Value::Array(_) | Value::Object(_) => Err(serde::de::Error::custom(format!(
                    "`{k}` must be a string, found {v}"
                ))),
                other => Ok((k, crate::expr::text_of(&other))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(StrMap)
    }
}

/// A duration written as `30s`, `500ms`, `15m`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dur(pub std::time::Duration);

impl ArgKind for Dur {
    const TY: ArgType = ArgType::Duration;
}

impl<'de> serde::Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// `"r#type"` → `"type"`: the argument name of a raw-identifier field.
pub const fn arg_name(field: &'static str) -> &'static str {
    match field.as_bytes() {
        [b'r', b'#', ..] => match field.split_at_checked(2) {
            Some((_, rest)) => rest,
            None => field,
        },
        _ => field,
    }
}

/// Declares an action's arguments once: the struct (serde, unknown fields refused, missing
/// ones defaulted — lint reports missing required ones before anything runs) and its
/// [`ArgsSchema`] table. Each field is `/// doc` then `name: Type`, with `= required`
/// for required ones; the argument type comes from the field type through [`ArgKind`].
#[macro_export]
macro_rules! action_args {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $ty:ty $(= $req:ident)?
            ),* $(,)?
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $(
                $(#[doc = $doc])+
                pub $field: $ty,
            )*
        }

        impl $crate::actions::spec::ArgsSchema for $name {
            const ARGS: &'static [$crate::actions::spec::ArgSpec] = &[
                $(
                    $crate::actions::spec::ArgSpec {
                        name: $crate::actions::spec::arg_name(stringify!($field)),
                        ty: <$ty as $crate::actions::spec::ArgKind>::TY,
                        required: $crate::action_args!(@required $($req)?),
                        doc: $crate::actions::spec::trim_doc(concat!($($doc),+)),
                    },
                )*
            ];
        }
    };
    (@required required) => { true };
    (@required) => { false };
}

/// Declares an enum argument once: its variants (as written in runbooks), serde, and its
/// [`ArgKind`] listing the allowed values.
#[macro_export]
macro_rules! arg_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            #[default]
            $first:ident = $first_text:literal
            $(, $variant:ident = $text:literal)* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
        pub enum $name {
            #[default]
            #[serde(rename = $first_text)]
            $first,
            $(
                #[serde(rename = $text)]
                $variant,
            )*
        }

        impl $name {
            pub const NAMES: &'static [&'static str] = &[$first_text $(, $text)*];

            #[allow(dead_code)]
            pub fn as_str(self) -> &'static str {
                match self {
                    $name::$first => $first_text,
                    $($name::$variant => $text,)*
                }
            }
        }

        impl $crate::actions::spec::ArgKind for $name {
            const TY: $crate::actions::spec::ArgType =
                $crate::actions::spec::ArgType::Enum($name::NAMES);
        }
    };
}

/// A doc comment's text without the leading space of each line.
pub const fn trim_doc(s: &'static str) -> &'static str {
    s.trim_ascii()
}
