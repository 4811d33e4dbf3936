//! Reads `opsctl.yaml` from its YAML tree, reporting every problem with its location.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::Diagnostics;
use crate::loader::{Cx, Fields};
use crate::rules::Rule;
use crate::source::SourceFile;
use crate::yaml::{self, Node};

use super::{
    Address, Config, DEFAULT_POOL, DbTarget, EnvConfig, HttpTarget, KubeTarget, Via, ViaTo,
};

const TOP_KEYS: &[&str] = &["runbooks", "default_env", "envs"];
const HTTP_KEYS: &[&str] = &[
    "base_url", "url", "url_env", "auth", "headers", "insecure", "ca_file", "via",
];
const AUTH_KEYS: &[&str] = &["bearer_env"];
const DB_KEYS: &[&str] = &["url", "url_env", "pool", "ca_file", "via"];
const KUBE_KEYS: &[&str] = &["context", "namespace"];
const VIA_KEYS: &[&str] = &["k8s"];
const VIA_K8S_KEYS: &[&str] = &["service", "pod", "selector", "namespace", "port"];

/// Builds a [`Config`] from the file; problems go to `diags` (the config is still
/// returned, with what could be read).
pub fn load_config(file: &Arc<SourceFile>, diags: &mut Diagnostics) -> Config {
    let base_dir = file
        .path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut config = Config {
        file: Some(file.clone()),
        runbook_dirs: vec![base_dir.join("runbooks")],
        default_env: None,
        envs: BTreeMap::new(),
    };
    let root = match yaml::parse(file) {
        Ok(n) => n,
        Err(d) => {
            diags.push(d);
            return config;
        }
    };
    if root.is_null() {
        return config;
    }
    let mut cx = Cx { file, diags };
    let Some(mut top) = Fields::of(&mut cx, &root, "opsctl.yaml") else {
        return config;
    };
    if let Some(n) = top.take("runbooks") {
        config.runbook_dirs = cx
            .string_list(n, "runbooks")
            .into_iter()
            .map(|(d, _)| join(&base_dir, &d))
            .collect();
    }
    if let Some(n) = top.take("default_env") {
        config.default_env = cx.string(n, "default_env");
    }
    if let Some(n) = top.take("envs") {
        if let Some(envs) = Fields::of(&mut cx, n, "envs") {
            for (name, _key, node) in envs.all() {
                let env = load_env(&mut cx, name, node, &base_dir);
                config.envs.insert(name.to_string(), env);
            }
        }
    }
    if let (Some(default), Some(span)) = (&config.default_env, top.key_span("default_env")) {
        if !config.envs.contains_key(default) {
            let known: Vec<&str> = config.envs.keys().map(String::as_str).collect();
            let d = crate::diagnostic::Diagnostic::error(
                Rule::InvalidValue,
                format!("default_env `{default}` is not one of the configured envs"),
            )
            .at(file, span, "")
            .help_opt(crate::suggest::help(default, known.iter().copied()));
            cx.push(d);
        }
    }
    top.finish(&mut cx, "opsctl.yaml", TOP_KEYS);
    config
}

fn join(base: &Path, p: &str) -> PathBuf {
    let path = PathBuf::from(p);
    let joined = if path.is_absolute() {
        path
    } else {
        base.join(path)
    };
    // `runbooks: [.]` should not show up as `dir/./x.yaml` in messages.
    let clean: PathBuf = joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    // `runbooks: [.]` beside a config in the current directory is the current directory.
    if clean.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        clean
    }
}

fn load_env(cx: &mut Cx<'_>, name: &str, node: &Node, base: &Path) -> EnvConfig {
    let mut env = EnvConfig {
        name: name.to_string(),
        ..EnvConfig::default()
    };
    if node.is_null() {
        return env;
    }
    let Some(mut f) = Fields::of(cx, node, &format!("env `{name}`")) else {
        return env;
    };
    if let Some(n) = f.take("vars") {
        match n.to_json() {
            serde_json::Value::Object(m) => env.vars = m,
            serde_json::Value::Null => {}
            _ => cx.type_error(n, "vars", "a mapping"),
        }
    }
    // Every other section belongs to a kind of target.
    for kind in crate::targets::kinds::KINDS {
        if let Some(n) = f.take(kind.section()) {
            for (tname, t) in kind.load(cx, n, base) {
                env.add_target(kind.section(), &tname, t);
            }
        }
    }
    let mut known = vec!["vars"];
    known.extend(crate::targets::kinds::KINDS.iter().map(|k| k.section()));
    f.finish(cx, &format!("env `{name}`"), &known);
    env
}

/// The named targets of a section (`postgres: {primary: ..., replica: ...}`).
pub fn named_targets<'n>(cx: &mut Cx<'_>, node: &'n Node, kind: &str) -> Vec<(String, &'n Node)> {
    match Fields::of(cx, node, &format!("{kind} targets")) {
        Some(f) => f.all().map(|(k, _, v)| (k.to_string(), v)).collect(),
        None => Vec::new(),
    }
}

fn address(cx: &mut Cx<'_>, f: &mut Fields<'_>, keys: &[&str], what: &str) -> Option<Address> {
    let mut found = Vec::new();
    for key in keys {
        if let Some(n) = f.take(key) {
            found.push((*key, n));
        }
    }
    match found.as_slice() {
        [] => {
            cx.error(
                Rule::MissingKey,
                format!("{what} needs an address: {}", keys.join(" or ")),
                f.span,
                "no address",
            );
            None
        }
        [(key, n), rest @ ..] => {
            if let Some((other, n2)) = rest.first() {
                cx.error(
                    Rule::InvalidValue,
                    format!("{what} has both `{key}` and `{other}`; give one"),
                    n2.span,
                    "second address",
                );
            }
            let s = cx.string(n, key)?;
            if *key == "url_env" {
                Some(Address::Env(s))
            } else {
                Some(Address::Literal(s))
            }
        }
    }
}

/// One http target.
pub fn load_http(cx: &mut Cx<'_>, name: &str, node: &Node, base: &Path) -> Option<HttpTarget> {
    let what = format!("http target `{name}`");
    let mut f = Fields::of(cx, node, &what)?;
    let base_url = address(cx, &mut f, &["base_url", "url", "url_env"], &what);
    let mut target = HttpTarget {
        name: name.to_string(),
        base_url: base_url.clone().unwrap_or(Address::Literal(String::new())),
        bearer_env: None,
        headers: Vec::new(),
        insecure: false,
        ca_file: None,
        via: None,
    };
    if let Some(a) = f.take("auth") {
        if let Some(mut af) = Fields::of(cx, a, "auth") {
            if let Some(b) = af.take("bearer_env") {
                target.bearer_env = cx.string(b, "auth.bearer_env");
            }
            af.finish(cx, "auth", AUTH_KEYS);
        }
    }
    if let Some(h) = f.take("headers") {
        if let Some(hf) = Fields::of(cx, h, "headers") {
            for (k, _, v) in hf.all() {
                if let Some(text) = cx.text(v, k) {
                    target.headers.push((k.to_string(), text));
                }
            }
        }
    }
    if let Some(i) = f.take("insecure") {
        target.insecure = cx.bool(i, "insecure").unwrap_or(false);
    }
    if let Some(c) = f.take("ca_file") {
        target.ca_file = cx.string(c, "ca_file").map(|p| join(base, &p));
    }
    target.via = f.take("via").and_then(|v| load_via(cx, v, &what));
    f.finish(cx, &what, HTTP_KEYS);
    base_url.map(|_| target)
}

/// One postgres or redis target.
pub fn load_db(
    cx: &mut Cx<'_>,
    kind: &str,
    name: &str,
    node: &Node,
    base: &Path,
) -> Option<DbTarget> {
    let what = format!("{kind} target `{name}`");
    let mut f = Fields::of(cx, node, &what)?;
    let url = address(cx, &mut f, &["url", "url_env"], &what);
    let mut pool = DEFAULT_POOL;
    if let Some(p) = f.take("pool") {
        match p.value {
            crate::yaml::Value::Int(n) if (1..=1000).contains(&n) => pool = n as usize,
            _ => cx.error(
                Rule::InvalidValue,
                format!("`pool` of {what} must be an integer from 1 to 1000"),
                p.span,
                "invalid pool size",
            ),
        }
    }
    let ca_file = f
        .take("ca_file")
        .and_then(|c| cx.string(c, "ca_file"))
        .map(|p| join(base, &p));
    let via = f.take("via").and_then(|v| load_via(cx, v, &what));
    f.finish(cx, &what, DB_KEYS);
    Some(DbTarget {
        name: name.to_string(),
        url: url?,
        pool,
        ca_file,
        via,
    })
}

/// `via: { k8s: { service|pod|selector: ..., namespace: ..., port: ... } }`.
fn load_via(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<Via> {
    let mut f = Fields::of(cx, node, &format!("`via` of {what}"))?;
    let Some(k8s) = f.take("k8s") else {
        cx.error(
            Rule::MissingKey,
            format!("`via` of {what} needs `k8s` (the only way through so far)"),
            node.span,
            "nothing to go through",
        );
        return None;
    };
    f.finish(cx, "via", VIA_KEYS);
    let mut k = Fields::of(cx, k8s, "via.k8s")?;
    let mut to = Vec::new();
    for key in ["service", "pod", "selector"] {
        if let Some(n) = k.take(key) {
            if let Some(v) = cx.string(n, &format!("via.k8s.{key}")) {
                to.push((key, v, n.span));
            }
        }
    }
    let namespace = k
        .take("namespace")
        .and_then(|n| cx.string(n, "via.k8s.namespace"));
    let mut port = None;
    if let Some(p) = k.take("port") {
        match p.value {
            crate::yaml::Value::Int(n) if (1..=65535).contains(&n) => port = u16::try_from(n).ok(),
            _ => cx.error(
                Rule::InvalidValue,
                format!("`via.k8s.port` of {what} must be a port number (1 to 65535)"),
                p.span,
                "invalid port",
            ),
        }
    }
    k.finish(cx, "via.k8s", VIA_K8S_KEYS);
    match to.as_slice() {
        [(key, v, _)] => Some(Via {
            to: match *key {
                "service" => ViaTo::Service(v.clone()),
                "pod" => ViaTo::Pod(v.clone()),
                _ => ViaTo::Selector(v.clone()),
            },
            namespace,
            port,
        }),
        [] => {
            cx.error(
                Rule::MissingKey,
                format!("`via.k8s` of {what} needs one of `service`, `pod` or `selector`"),
                k8s.span,
                "which pod?",
            );
            None
        }
        [_, (_, _, span), ..] => {
            cx.error(
                Rule::InvalidValue,
                format!(
                    "`via.k8s` of {what} takes one of `service`, `pod` or `selector`, not several"
                ),
                *span,
                "second one",
            );
            None
        }
    }
}

/// The `kubernetes:` section: context and namespace.
pub fn load_kubernetes(cx: &mut Cx<'_>, node: &Node) -> Option<KubeTarget> {
    let mut k = Fields::of(cx, node, "kubernetes")?;
    let mut kube = KubeTarget::default();
    if let Some(c) = k.take("context") {
        kube.context = cx.string(c, "kubernetes.context");
    }
    if let Some(ns) = k.take("namespace") {
        kube.namespace = cx.string(ns, "kubernetes.namespace");
    }
    k.finish(cx, "kubernetes", KUBE_KEYS);
    Some(kube)
}
