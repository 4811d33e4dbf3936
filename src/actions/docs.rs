//! The actions reference, generated from each action's one description (its typed
//! arguments, outputs and rules): `opsctl actions [NAME]` prints it and
//! `docs/actions.md` is this text (a test keeps the file in sync).

use super::spec::ActionSpec;
use super::{Action, REGISTRY};

/// One action as markdown: summary, arguments, outputs, default expectation, mutation.
pub fn action_markdown(a: &dyn Action) -> String {
    let spec: &ActionSpec = a.spec();
    let mut out = format!("## `{}`\n\n{}\n\n", spec.name, spec.summary);
    if spec.args.is_empty() {
        out.push_str("No arguments.\n\n");
    } else {
        out.push_str("| argument | type | required | what it is |\n|---|---|---|---|\n");
        for arg in spec.args {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                arg.name,
                arg.ty.describe().replace('|', "\\|"),
                if arg.required { "yes" } else { "" },
                arg.doc.replace('|', "\\|").replace('\n', " ")
            ));
        }
        out.push('\n');
    }
    for group in spec.exclusive {
        let names: Vec<String> = group.names.iter().map(|n| format!("`{n}`")).collect();
        out.push_str(&format!(
            "{} of {}.\n\n",
            if group.required {
                "Exactly one"
            } else {
                "At most one"
            },
            names.join(", ")
        ));
    }
    out.push_str("| output | what it is |\n|---|---|\n");
    for o in spec.outputs {
        let secret = if a.secret_outputs().contains(&o.name) {
            " (a secret: masked everywhere; pass it on unchanged)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{}` | {}{secret} |\n",
            o.name,
            o.doc.replace('|', "\\|")
        ));
    }
    out.push_str(&format!(
        "\n- **Default `expect`:** {}\n- **Mutating:** {}\n",
        spec.default_expect, spec.mutating
    ));
    let access = a.kube_access(&serde_json::Value::Null);
    if !access.is_empty() {
        let parts: Vec<String> = access.iter().map(access_text).collect();
        out.push_str(&format!(
            "- **Kubernetes access** (with any arguments; `opsctl rbac` gives a runbook's own): {}\n",
            parts.join("; ")
        ));
    }
    if a.asks_person() {
        out.push_str("- **Asks a person:** `--yes` does not answer it; `--yes-manual` does.\n");
    }
    out
}

/// One request as the docs show it: `apps` `deployments`: get, patch.
fn access_text(a: &super::KubeAccess) -> String {
    let what = match &a.resource {
        super::KubeResource::Known {
            group,
            resource,
            namespaced,
        } => {
            let group = if group.is_empty() { "core" } else { group };
            let scope = if !namespaced {
                " (cluster-wide)"
            } else if a.all_namespaces {
                " (every namespace)"
            } else {
                ""
            };
            format!("`{resource}` ({group}){scope}")
        }
        super::KubeResource::Unknown(what) => what.clone(),
    };
    format!("{what}: {}", a.verbs.join(", "))
}

/// The whole reference (`docs/actions.md`).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Actions\n\nEvery step does exactly one of these. Arguments may be `${{ }}` \
         templates (typed when they resolve); outputs are what `expect`, `warn_if`, \
         `fail_if`, `capture` and later steps (`steps.<id>.outputs.<name>`) read.\n\n\
         This file is generated from the actions' own descriptions (`src/actions/`): \
         `opsctl actions --markdown > docs/actions.md`.\n\n| action | what it does |\n|---|---|\n",
    );
    for a in REGISTRY {
        let s = a.spec();
        out.push_str(&format!(
            "| [`{}`](#{}) | {} |\n",
            s.name,
            anchor(s.name),
            s.summary
        ));
    }
    for a in REGISTRY {
        out.push('\n');
        out.push_str(&action_markdown(*a));
    }
    out
}

fn anchor(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
