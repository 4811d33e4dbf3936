//! examples/kubernetes/: every manifest parses into its Kubernetes type, the names and keys
//! that tie them together agree, the ConfigMap's config lints with its runbook, the Role is
//! what `opsctl rbac health` prints (derived from the runbook, so a new Kubernetes step
//! changes it), and the real kubectl applies the kustomization to the test API server.

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::Value;

use crate::kube::Cluster;
use crate::support::{Project, repo};

fn dir() -> PathBuf {
    repo().join("examples/kubernetes")
}

fn text(name: &str) -> String {
    let p = dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[track_caller]
fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_saphyr::from_str(&text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Manifests {
    sa: ServiceAccount,
    role: Role,
    binding: RoleBinding,
    config: ConfigMap,
    secret: Secret,
    cron: CronJob,
}

fn manifests() -> Manifests {
    Manifests {
        sa: parse("serviceaccount.yaml"),
        role: parse("role.yaml"),
        binding: parse("rolebinding.yaml"),
        config: parse("configmap.yaml"),
        secret: parse("secret.yaml"),
        cron: parse("cronjob.yaml"),
    }
}

fn pod(cron: &CronJob) -> &PodSpec {
    cron.spec
        .job_template
        .spec
        .as_ref()
        .and_then(|j| j.template.spec.as_ref())
        .expect("cronjob.yaml: spec.jobTemplate.spec.template.spec")
}

fn container<'a>(pod: &'a PodSpec, name: &str) -> &'a Container {
    pod.containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("cronjob.yaml: no container `{name}`"))
}

/// The value after `flag` in a container's arguments.
fn flag<'a>(c: &'a Container, flag: &str) -> &'a str {
    let args = c.args.as_deref().unwrap_or_default();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("container `{}`: no `{flag}` in {args:?}", c.name))
}

fn data<'a>(cm: &'a ConfigMap, key: &str) -> &'a str {
    cm.data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("configmap.yaml: no key `{key}`"))
}

/// The ConfigMap's files laid out as the CronJob mounts them, in a project directory.
fn mounted_config(m: &Manifests) -> Project {
    let project = Project::new();
    let cm_name = m.config.metadata.name.as_deref();
    let volume = pod(&m.cron)
        .volumes
        .iter()
        .flatten()
        .find(|v| {
            v.config_map
                .as_ref()
                .is_some_and(|c| Some(c.name.as_str()) == cm_name)
        })
        .expect("cronjob.yaml: a volume of the ConfigMap");
    for item in volume
        .config_map
        .as_ref()
        .and_then(|c| c.items.as_ref())
        .expect("the ConfigMap volume lists its items")
    {
        project.file(&item.path, data(&m.config, &item.key));
    }
    project
}

#[test]
fn every_manifest_parses_and_the_kustomization_lists_them_all() {
    let m = manifests();
    assert_eq!(m.sa.metadata.name.as_deref(), Some("opsctl"));
    let kustomization: Value = parse("kustomization.yaml");
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .expect("kustomization.yaml: resources")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("examples/kubernetes")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn names_and_keys_agree() {
    let m = manifests();
    let ns = m.sa.metadata.namespace.clone().expect("a namespace");
    for (file, meta) in [
        ("role.yaml", &m.role.metadata),
        ("rolebinding.yaml", &m.binding.metadata),
        ("configmap.yaml", &m.config.metadata),
        ("secret.yaml", &m.secret.metadata),
        ("cronjob.yaml", &m.cron.metadata),
    ] {
        assert_eq!(meta.namespace.as_ref(), Some(&ns), "{file}: namespace");
    }
    // RoleBinding: the Role, to the service account.
    assert_eq!(m.binding.role_ref.kind, "Role");
    assert_eq!(
        Some(&m.binding.role_ref.name),
        m.role.metadata.name.as_ref()
    );
    let subjects = m.binding.subjects.as_deref().unwrap_or_default();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), m.sa.metadata.name.as_ref());
    assert_eq!(subjects[0].namespace.as_ref(), Some(&ns));

    let pod = pod(&m.cron);
    assert_eq!(pod.service_account_name, m.sa.metadata.name);
    let opsctl = container(pod, "opsctl");

    // The config is where --config says, from the ConfigMap, runbooks beside it.
    let config_path = flag(opsctl, "--config");
    let mount = opsctl
        .volume_mounts
        .iter()
        .flatten()
        .find(|vm| config_path.starts_with(&format!("{}/", vm.mount_path)))
        .unwrap_or_else(|| panic!("--config {config_path} is under no mount"));
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("the config mount's volume");
    let cm = volume
        .config_map
        .as_ref()
        .expect("the config volume is a ConfigMap");
    assert_eq!(Some(&cm.name), m.config.metadata.name.as_ref());
    let items = cm.items.as_deref().unwrap_or_default();
    let rel = &config_path[mount.mount_path.len() + 1..];
    assert!(
        items
            .iter()
            .any(|i| i.path == rel && i.key == "opsctl.yaml"),
        "{items:?}"
    );
    for item in items {
        data(&m.config, &item.key);
        assert!(
            item.path == rel || item.path.starts_with("runbooks/"),
            "{}: runbooks go under runbooks/ (the config's `runbooks: [runbooks]`)",
            item.path
        );
    }
    assert!(data(&m.config, "opsctl.yaml").contains("runbooks: [runbooks]"));

    // Credentials: every variable the config names comes from the Secret, by a key it has.
    let secret_keys: BTreeSet<&String> = m
        .secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    let env: Vec<_> = opsctl.env.iter().flatten().collect();
    let config_text = data(&m.config, "opsctl.yaml");
    let config: Value = serde_saphyr::from_str(config_text).expect("opsctl.yaml parses");
    let mut named_by_tree = BTreeSet::new();
    collect_env_names(&config, &mut named_by_tree);
    assert_eq!(
        named_by_tree.iter().map(String::as_str).collect::<Vec<_>>(),
        ["ADMIN_TOKEN", "DATABASE_URL", "REDIS_URL"]
    );
    for var in &named_by_tree {
        let e = env
            .iter()
            .find(|e| &e.name == var)
            .unwrap_or_else(|| panic!("the config reads ${var}; the container does not set it"));
        let key = e
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap_or_else(|| panic!("${var} is not from a Secret"));
        assert_eq!(Some(&key.name), m.secret.metadata.name.as_ref(), "${var}");
        assert!(
            secret_keys.contains(&key.key),
            "${var}: no key {} in the Secret",
            key.key
        );
    }
    assert!(
        m.secret.data.is_none(),
        "secret.yaml: placeholders in stringData only"
    );

    // The report lands on a volume the push container reads.
    let output = flag(opsctl, "--output");
    let push = container(pod, "push");
    let shared = opsctl
        .volume_mounts
        .iter()
        .flatten()
        .find(|vm| output.starts_with(&format!("{}/", vm.mount_path)))
        .expect("--output is under a mount");
    assert!(
        push.volume_mounts
            .iter()
            .flatten()
            .any(|vm| vm.name == shared.name && vm.mount_path == shared.mount_path),
        "push does not mount {}",
        shared.mount_path
    );
    let script = push.args.as_deref().unwrap_or_default().join("\n");
    assert!(script.contains(output), "push reads {output}");
    assert_eq!(
        opsctl.args.as_deref().unwrap_or_default()[2..5],
        ["health", "--format", "prometheus"]
    );
}

/// Every `url_env` and `bearer_env` value in a config tree.
fn collect_env_names(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("url_env" | "bearer_env", Value::String(s)) => {
                        out.insert(s.clone());
                    }
                    _ => collect_env_names(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_env_names(v, out)),
        _ => {}
    }
}

#[test]
fn the_pod_runs_unprivileged_within_limits() {
    let m = manifests();
    let spec = &m.cron.spec;
    assert_eq!(spec.schedule, "17 * * * *", "hourly");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let pod = pod(&m.cron);
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.is_some_and(|u| u != 0));
    for c in &pod.containers {
        let sc = c.security_context.as_ref().expect("securityContext");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(
            sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_string()]),
            "{}",
            c.name
        );
        let r = c.resources.as_ref().expect("resources");
        assert!(
            r.requests
                .as_ref()
                .is_some_and(|q| q.contains_key("memory")),
            "{}",
            c.name
        );
        assert!(
            r.limits.as_ref().is_some_and(|q| q.contains_key("memory")),
            "{}",
            c.name
        );
    }
}

#[test]
fn the_configmap_holds_the_sources_and_lints() {
    let m = manifests();
    assert_eq!(
        data(&m.config, "opsctl.yaml"),
        text("config/opsctl.yaml"),
        "configmap.yaml is behind config/opsctl.yaml: regenerate it (examples/kubernetes/README.md)"
    );
    let runbook = std::fs::read_to_string(repo().join("runbooks/health.yaml")).expect("health");
    assert_eq!(
        data(&m.config, "health.yaml"),
        runbook,
        "configmap.yaml is behind runbooks/health.yaml: regenerate it (examples/kubernetes/README.md)"
    );
    let project = mounted_config(&m);
    project
        .opsctl()
        .args(["--config", "opsctl.yaml", "lint"])
        .run()
        .code(0);
}

#[test]
fn the_role_is_what_opsctl_rbac_prints_for_the_runbook() {
    let m = manifests();
    let project = mounted_config(&m);
    let out = project
        .opsctl()
        .args([
            "--config",
            "opsctl.yaml",
            "rbac",
            "health",
            "--format",
            "json",
        ])
        .run();
    out.code(0);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        printed.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        Some(vec![&"rules".to_string()]),
        "health acts in its own namespace only: {printed}"
    );
    let role_rules = serde_json::to_value(m.role.rules.clone().unwrap_or_default()).expect("rules");
    assert_eq!(
        role_rules, printed["rules"],
        "role.yaml is not what `opsctl rbac health` prints: regenerate it (examples/kubernetes/README.md)"
    );
    // The file is the YAML output itself, byte for byte.
    let yaml = project
        .opsctl()
        .args(["--config", "opsctl.yaml", "rbac", "health"])
        .run();
    yaml.code(0);
    assert_eq!(yaml.stdout, text("role.yaml"));
    // A health check reads: no verb that changes anything.
    let verbs: BTreeSet<&str> = printed["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["verbs"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(!verbs.is_empty(), "the health runbook has Kubernetes steps");
    assert!(
        verbs.iter().all(|v| ["get", "list", "watch"].contains(v)),
        "{verbs:?}"
    );
}

#[test]
fn rbac_follows_nested_runbooks_and_warns_on_computed_kinds() {
    let project = Project::new();
    project
        .file(
            "opsctl.yaml",
            "runbooks: [runbooks]\ndefault_env: prod\nenvs:\n  prod:\n    kubernetes: { namespace: prod }\n",
        )
        .runbook(
            "outer",
            "name: outer\ntitle: Outer\nparams:\n  kind: { default: deployment }\nsteps:\n  - id: logs\n    k8s.logs: { selector: app=api, namespace: prod }\n  - id: any\n    k8s.get: { kind: \"${{ params.kind }}\", name: api }\n  - id: inner\n    runbook: { name: inner }\n",
        )
        .runbook(
            "inner",
            "name: inner\ntitle: Inner\nsteps:\n  - id: restart\n    k8s.rollout: { deployment: api, action: restart }\n  - id: drain\n    k8s.drain: { node: n1 }\n",
        );
    let out = project
        .opsctl()
        .args(["rbac", "outer", "--format", "json"])
        .run();
    out.code(0)
        .stderr_has("step `any` (k8s.get): computed kind `${{ params.kind }}`");
    let printed: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        printed,
        serde_json::json!({
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
                // The team lock of a run that mutates.
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                 "verbs": ["create", "delete", "get", "patch", "update"]},
            ],
            "clusterRules": [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
            ],
        })
    );
    let yaml = project.opsctl().args(["rbac", "outer"]).run();
    yaml.code(0)
        .stdout_has("kind: Role\nmetadata:\n  name: \"opsctl-outer\"\n  namespace: \"prod\"\n")
        .stdout_has("kind: ClusterRole\n");
    // The YAML is Kubernetes': each document parses as its type.
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml.stdout).expect("YAML");
    assert_eq!(docs.len(), 2);
    let role: Role = serde_json::from_value(docs[0].clone()).expect("a Role");
    assert_eq!(role.rules.map(|r| r.len()), Some(4));
}

#[test]
fn kubectl_applies_the_kustomization() {
    let cluster = Cluster::with(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: production\n",
        &[],
    );
    let path = dir().display().to_string();
    cluster
        .kubectl(&["apply", "--dry-run=client", "-k", &path])
        .code(0)
        .stdout_has("cronjob.batch/opsctl-health created (dry run)");
    cluster.kubectl(&["apply", "-k", &path]).code(0);
    let role = cluster.object(
        "rbac.authorization.k8s.io/v1",
        "roles",
        "production",
        "opsctl-health",
    );
    let m = manifests();
    assert_eq!(
        role["rules"],
        serde_json::to_value(m.role.rules).expect("rules")
    );
    let cron = cluster.object("batch/v1", "cronjobs", "production", "opsctl-health");
    assert_eq!(
        cron.pointer("/spec/jobTemplate/spec/template/spec/serviceAccountName"),
        Some(&Value::String("opsctl".into()))
    );
    for (api_version, resource, name) in [
        ("v1", "serviceaccounts", "opsctl"),
        (
            "rbac.authorization.k8s.io/v1",
            "rolebindings",
            "opsctl-health",
        ),
        ("v1", "configmaps", "opsctl-config"),
        ("v1", "secrets", "opsctl-credentials"),
    ] {
        cluster.object(api_version, resource, "production", name);
    }
}
