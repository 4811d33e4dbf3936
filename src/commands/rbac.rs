//! `opsctl rbac RUNBOOK...`: the Kubernetes RBAC rules the runbooks' steps need (the
//! runbooks they run included, loaded as a run loads them), as a ready-to-apply Role or
//! as JSON. What cannot be known before the run is a warning on stderr.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::exec::runner::{Request, prepare};
use crate::exit_code;
use crate::invocation::{Global, RbacFormat};
use crate::library::{Checked, Library};
use crate::redact::Redactor;

pub fn rbac(g: &Global, names: &[String], format: RbacFormat) -> i32 {
    let config = match super::load_config(g) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let library = Library::for_config(&config);
    // Each runbook once, however many of the given ones run it; roots in the order given.
    let mut roots: Vec<String> = Vec::new();
    let mut all: BTreeMap<String, Arc<Checked>> = BTreeMap::new();
    let mut namespace = None;
    let mut lease_lock = false;
    let mut vias: BTreeMap<(String, String), crate::config::Via> = BTreeMap::new();
    let mut failed = false;
    for name in names {
        let request = Request {
            runbook: name.clone(),
            env: g.env.clone(),
            // Params only decide values, never which requests a step makes; required
            // ones are filled from their examples so that every runbook can be read.
            use_examples: true,
            ..Request::default()
        };
        match prepare(&config, &library, &request) {
            Ok(p) => {
                if !p.warnings.is_empty() {
                    super::report_errors(g, &p.warnings, &Redactor::new());
                }
                namespace = p.env.kubernetes().and_then(|k| k.namespace.clone());
                lease_lock = p.env.targets.contains_key("kubernetes");
                for (section, targets) in &p.env.targets {
                    for (name, t) in targets {
                        if let Some(v) = t.via() {
                            vias.insert((section.to_string(), name.clone()), v.clone());
                        }
                    }
                }
                let root = p.checked.runbook.name.clone();
                if !roots.contains(&root) {
                    roots.push(root.clone());
                }
                all.insert(root, p.checked.clone());
                all.extend(p.nested);
            }
            Err(diags) => {
                super::report_errors(g, &diags, &Redactor::new());
                failed = true;
            }
        }
    }
    if failed {
        return exit_code::INVALID;
    }
    let needs = crate::rbac::needs(
        all.values().map(|c| c.runbook.as_ref()),
        namespace.as_deref(),
        lease_lock,
        &|kind, name| vias.get(&(kind.to_string(), name.to_string())).cloned(),
    );
    for w in &needs.warnings {
        eprintln!("opsctl rbac: warning: {w}");
    }
    if !needs.other_namespaces.is_empty() || !needs.cluster_rules.is_empty() {
        eprintln!(
            "opsctl rbac: note: some steps act outside the Role's namespace: {}",
            match format {
                RbacFormat::Yaml =>
                    "the output has a Role per namespace and a ClusterRole; bind each",
                RbacFormat::Json => "see `otherNamespaces` and `clusterRules`",
            }
        );
    }
    let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
    let text = match format {
        RbacFormat::Json => format!("{}\n", needs.to_json()),
        RbacFormat::Yaml => needs.to_yaml(
            &crate::rbac::role_name(&roots),
            namespace.as_deref(),
            &format!(
                "# What the steps of {} call in the Kubernetes API (`opsctl rbac {}`).\n# API discovery needs no rule: system:discovery grants it to every account.\n",
                roots.join(", "),
                roots.join(" ")
            ),
        ),
    };
    super::print_stdout(&text)
}
