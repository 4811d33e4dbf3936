//! `secret.generate`: random bytes from the OS, encoded; the value is registered as a
//! secret before the step ends, so it is redacted everywhere.

use base64::Engine;
use futures::future::BoxFuture;
use serde_json::Value;

use super::spec::{ActionSpec, ArgsSchema, Int, OutputSpec};
use super::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct SecretGenerate;

crate::arg_enum! {
    /// How the random bytes are written.
    pub enum Encoding {
        #[default]
        Base64Url = "base64url",
        Base64 = "base64",
        Hex = "hex",
    }
}

crate::action_args! {
    /// Arguments of `secret.generate`.
    pub struct SecretArgs {
        /// Random bytes (32), from 16 to 1024.
        bytes: Option<Int>,
        /// base64url (default), base64 or hex.
        encoding: Encoding,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "secret.generate",
    summary: "Generate a random secret.",
    args: <SecretArgs as ArgsSchema>::ARGS,
    outputs: &[OutputSpec {
        name: "value",
        doc: "The secret (redacted in every output).",
    }],
    exclusive: &[],
    mutating: "never",
    default_expect: "always holds",
};

fn byte_count(bytes: Option<Int>) -> Result<usize, ActionError> {
    match bytes {
        None => Ok(32),
        Some(Int(n)) => usize::try_from(n)
            .ok()
            .filter(|n| (16..=1024).contains(n))
            .ok_or_else(|| {
                ActionError::InvalidArgs("secret.generate: `bytes` must be from 16 to 1024".into())
            }),
    }
}

impl ActionImpl for SecretGenerate {
    type Args = SecretArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn secret_outputs(&self) -> &'static [&'static str] {
        &["value"]
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        if let Some(arg) = args.get("bytes") {
            if let Some(v) = arg.value.literal() {
                let n = v.as_i64().map(Int);
                if n.is_none() || byte_count(n).is_err() {
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

    fn describe(&self, a: &SecretArgs, _env: &EnvConfig) -> String {
        format!(
            "generate {} random bytes ({})",
            byte_count(a.bytes).unwrap_or(32),
            a.encoding.as_str()
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: SecretArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let n = byte_count(a.bytes)?;
            let mut buf = vec![0u8; n];
            getrandom::fill(&mut buf)
                .map_err(|e| ActionError::Failed(format!("the OS random source failed: {e}")))?;
            let value = match a.encoding {
                Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(&buf),
                Encoding::Hex => buf.iter().map(|b| format!("{b:02x}")).collect(),
                Encoding::Base64Url => {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf)
                }
            };
            cx.redactor().add(&value);
            let mut out = Outputs::new();
            out.insert("value".into(), Value::String(value));
            Ok(out)
        })
    }
}
