//! `secret.generate`: random bytes from the OS, encoded; the value is registered as a
//! secret before the step ends, so it is redacted everywhere.

use base64::Engine;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgSpec, ArgType, OutputSpec};
use super::{Action, ActionError, Outputs, arg_str};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct SecretGenerate;

const ENCODINGS: &[&str] = &["base64url", "base64", "hex"];

static SPEC: ActionSpec = ActionSpec {
    name: "secret.generate",
    summary: "Generate a random secret.",
    args: &[
        ArgSpec {
            name: "bytes",
            ty: ArgType::Int,
            required: false,
            doc: "Random bytes (32), from 16 to 1024.",
        },
        ArgSpec {
            name: "encoding",
            ty: ArgType::Enum(ENCODINGS),
            required: false,
            doc: "base64url (default), base64 or hex.",
        },
    ],
    outputs: &[OutputSpec {
        name: "value",
        doc: "The secret (redacted in every output).",
    }],
    exclusive: &[],
    mutating: "never",
    default_expect: "always holds",
};

fn byte_count(args: &Value) -> Result<usize, ActionError> {
    match args.get("bytes") {
        None => Ok(32),
        Some(v) => v
            .as_u64()
            .filter(|n| (16..=1024).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| {
                ActionError::InvalidArgs("secret.generate: `bytes` must be from 16 to 1024".into())
            }),
    }
}

impl Action for SecretGenerate {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn secret_outputs(&self) -> &'static [&'static str] {
        &["value"]
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        if let Some(arg) = args.get("bytes") {
            if let Some(v) = arg.value.literal() {
                if byte_count(&json!({"bytes": v})).is_err() {
                    cx.error(
                        crate::rules::Rule::InvalidArgument,
                        "`bytes` of `secret.generate` must be from 16 to 1024",
                        arg.value.span(),
                        "out of range",
                    );
                }
            }
        }
    }

    fn mutates(&self, _args: &Value) -> bool {
        false
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        format!(
            "generate {} random bytes ({})",
            byte_count(args).unwrap_or(32),
            arg_str(args, "encoding").unwrap_or("base64url")
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let n = byte_count(&args)?;
            let mut buf = vec![0u8; n];
            getrandom::fill(&mut buf)
                .map_err(|e| ActionError::Failed(format!("the OS random source failed: {e}")))?;
            let value = match arg_str(&args, "encoding").unwrap_or("base64url") {
                "base64" => base64::engine::general_purpose::STANDARD.encode(&buf),
                "hex" => buf.iter().map(|b| format!("{b:02x}")).collect(),
                _ => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf),
            };
            cx.redactor().add(&value);
            let mut out = Outputs::new();
            out.insert("value".into(), Value::String(value));
            Ok(out)
        })
    }
}
