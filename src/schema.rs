//! `opsctl schema`: a JSON Schema (draft-07) of the runbook format, for editors via the
//! yaml-language-server modeline. Generated from the same action registry lint uses, so
//! it accepts exactly the keys and arguments opsctl knows and rejects unknown keys.

use serde_json::{Map, Value, json};

use crate::actions::{self, ArgType};
use crate::loader::STEP_KEYS;
use crate::model::Severity;

const DURATION: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// An action's duration argument: a duration, or an expression that gives one.
const DURATION_OR_EXPR: &str = r"^(([0-9]+(\.[0-9]+)?(ms|s|m|h))+|.*\$\{\{.*)$";

fn expr_list() -> Value {
    json!({"anyOf": [
        {"type": "string"},
        {"type": "boolean"},
        {"type": "array", "items": {"type": ["string", "boolean"]}}
    ]})
}

fn string_list() -> Value {
    json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
}

/// The schema document.
pub fn runbook_schema() -> Value {
    let mut step_props = Map::new();
    step_props.insert("id".into(), json!({"type": "string", "pattern": "^[a-z][a-z0-9_-]*$", "description": "Unique id; other steps refer to it."}));
    step_props.insert(
        "name".into(),
        json!({"type": "string", "description": "Human title (defaults to the id)."}),
    );
    step_props.insert(
        "doc".into(),
        json!({"type": "string", "description": "Markdown shown by `show`."}),
    );
    step_props.insert("needs".into(), json!({"description": "Steps that must end first.", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}));
    step_props.insert("when".into(), json!({"type": ["string", "boolean"], "description": "Expression; the step runs after its needs end (any status) if it is true."}));
    step_props.insert("tags".into(), string_list());
    step_props.insert("timeout".into(), json!({"type": "string", "pattern": DURATION, "description": "Per attempt (default 30s): 500ms, 30s, 5m, 1h."}));
    step_props.insert(
        "retry".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
                "delay": {"type": "string", "pattern": DURATION},
                "until": {"type": ["string", "boolean"]}
            }
        }),
    );
    step_props.insert("confirm".into(), json!({"type": "boolean", "description": "Ask before running (always true for mutating actions)."}));
    step_props.insert("foreach".into(), json!({"type": "string", "description": "An expression giving a list: the step runs once per item (the item in scope as `item`, or the `as` name)."}));
    step_props.insert("as".into(), json!({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "With foreach: the item's name (default item)."}));
    step_props.insert("max_parallel".into(), json!({"type": "integer", "minimum": 1, "description": "With foreach: items running at once (default 10)."}));
    step_props.insert("max".into(), json!({"type": "integer", "minimum": 1, "description": "With foreach: refuse a longer list before running any item."}));
    step_props.insert("always".into(), json!({"type": "boolean", "description": "Clean-up: runs once its needs have ended whatever their status, also after a failure or Ctrl-C."}));
    step_props.insert("expect".into(), expr_list());
    step_props.insert("warn_if".into(), expr_list());
    step_props.insert("fail_if".into(), expr_list());
    step_props.insert(
        "capture".into(),
        json!({"type": "object", "additionalProperties": {"type": "string"}}),
    );
    debug_assert_eq!(step_props.len(), STEP_KEYS.len());

    let mut one_action = Vec::new();
    for action in actions::REGISTRY {
        let spec = action.spec();
        let mut props = Map::new();
        for a in spec.args {
            let mut s = a.ty.json_schema();
            if let Some(obj) = s.as_object_mut() {
                obj.insert("description".into(), json!(a.doc));
            }
            // A duration as written (`30s`), or a `${{ }}` expression giving one.
            if let (ArgType::Duration, Some(obj)) = (a.ty, s.as_object_mut()) {
                obj.insert("pattern".into(), json!(DURATION_OR_EXPR));
            }
            props.insert(a.name.into(), s);
        }
        let required: Vec<&str> = spec
            .args
            .iter()
            .filter(|a| a.required)
            .map(|a| a.name)
            .collect();
        let mut args = json!({
            "type": "object",
            "description": spec.summary,
            "additionalProperties": false,
            "properties": props,
        });
        if !required.is_empty() {
            args["required"] = json!(required);
        }
        step_props.insert(spec.name.into(), args);
        one_action.push(json!({"required": [spec.name]}));
    }

    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://github.com/opsctl/opsctl/schema/runbook.json",
        "title": "opsctl runbook",
        "description": "A runbook: params and a graph of steps, each with exactly one action.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "title", "steps"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "description": "kebab-case; equals the file stem."},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "severity": {"enum": Severity::NAMES},
            "tags": {"type": "array", "items": {"type": "string"}},
            "params": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "additionalProperties": {"$ref": "#/definitions/param"}
            },
            "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/step"}},
            "finally": {"type": "array", "items": {"$ref": "#/definitions/step"}, "description": "Clean-up steps: run after every other step, whatever happened (Ctrl-C included)."}
        },
        "definitions": {
            "param": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": {
                    "default": {},
                    "description": {"type": "string"},
                    "required": {"type": "boolean"},
                    "pattern": {"type": "string", "format": "regex"},
                    "example": {},
                    "enum": {"type": "array", "minItems": 1, "description": "The values allowed (a menu when asked for on a terminal)."},
                    "type": {"enum": ["string", "int", "number", "bool", "duration"], "description": "What a value must be (default: the default's type)."}
                }
            },
            "step": {
                "type": "object",
                "additionalProperties": false,
                "required": ["id"],
                "properties": step_props,
                "oneOf": one_action,
            }
        }
    })
}
