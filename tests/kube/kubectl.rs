//! The real kubectl against the fake API server: what an on-call engineer would type, with
//! assertions on kubectl's output and on the server's store.

use serde_json::Value;

use super::Cluster;

const CRASH: &str = "api-7c9d8f6b5-crash";
const OOM: &str = "api-7c9d8f6b5-oom";
const READY: &str = "api-7c9d8f6b5-ready";
const OLD_RS: &str = "api-7c9d8f6b5";

fn prod() -> Cluster {
    Cluster::start("prod.yaml")
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn get_pods_by_label_as_table_and_json() {
    let c = prod();
    let out = c.kubectl(&["get", "pods", "-n", "prod", "-l", "app=api"]);
    out.code(0)
        .stdout_has("READY")
        .stdout_has("RESTARTS")
        .stdout_has("CrashLoopBackOff")
        // Fixture times are relative to the server's start: the crash was 3 minutes ago.
        .stdout_has("7 (3m");
    let ready_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(READY))
        .unwrap_or_default();
    assert!(
        ready_line.contains("1/1") && ready_line.contains("Running"),
        "{ready_line}"
    );
    // kubectl 1.32 took the aggregated discovery and needed no per-group documents.
    let paths: Vec<String> = c.server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths.iter().any(|p| p == "/apis"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p == "/api/v1" || p == "/apis/apps/v1"),
        "{paths:?}"
    );

    let json = c
        .kubectl(&[
            "get",
            "pods",
            "-n",
            "prod",
            "-l",
            "app in (api,web)",
            "-o",
            "json",
        ])
        .code(0)
        .json();
    let mut names: Vec<&str> = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| s(p, "/metadata/name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, [CRASH, OOM, READY]);

    // kubectl follows continue tokens page by page.
    let paged = c
        .kubectl(&["get", "pods", "-n", "prod", "--chunk-size=1", "-o", "name"])
        .code(0)
        .stdout
        .clone();
    assert_eq!(paged.lines().count(), 3, "{paged}");
    assert_eq!(
        c.server
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v1/namespaces/prod/pods" && r.query.contains("limit=1"))
            .count(),
        3
    );
    c.kubectl(&["get", "pods", "-n", "prod", "-l", "app!=api"])
        .code(0)
        .stderr_has("No resources found in prod namespace.");
    c.kubectl(&["get", "pods", "-A", "-l", "!app"])
        .code(0)
        .stderr_has("No resources found");
    c.kubectl(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=node-1",
    ])
    .code(0)
    .stdout_has("NAMESPACE")
    .stdout_has(OOM);
}

#[test]
fn events_and_describe_show_the_crash_loop() {
    let c = prod();
    c.kubectl(&["get", "events", "-n", "prod"])
        .code(0)
        .stdout_has("Warning")
        .stdout_has("BackOff")
        .stdout_has(&format!("pod/{CRASH}"));
    c.kubectl(&["describe", "pod", "-n", "prod", CRASH])
        .code(0)
        .stdout_has("CrashLoopBackOff")
        .stdout_has("Restart Count:  7")
        .stdout_has("Exit Code:    1")
        // describe finds the event by the pod's UID: the fixture's name reference was resolved.
        .stdout_has("Back-off restarting failed container api");
    // The same event through events.k8s.io/v1 (a read-only view of the core events).
    let json = c
        .kubectl(&["get", "events.v1.events.k8s.io", "-n", "prod", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(json["items"][0]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(json["items"][0]["regarding"]["name"], CRASH);
    assert_eq!(json["items"][0]["deprecatedCount"], 42);
    c.kubectl(&["describe", "pod", "-n", "prod", OOM])
        .code(0)
        .stdout_has("OOMKilled")
        .stdout_has("Exit Code:    137");
}

#[test]
fn logs_previous_and_tail() {
    let c = prod();
    c.kubectl(&["logs", "-n", "prod", CRASH, "--previous"])
        .code(0)
        .stdout_has("FATAL cannot reach database");
    let tail = c.kubectl(&["logs", "-n", "prod", READY, "--tail", "2"]);
    tail.code(0);
    let lines: Vec<&str> = tail.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", tail.stdout);
    assert!(lines[0].contains("listening on :8080") && lines[1].contains("/healthz"));
    c.kubectl(&["logs", "-n", "prod", READY, "--previous"])
        .code(1)
        .stderr_has(
            "previous terminated container \"api\" in pod \"api-7c9d8f6b5-ready\" not found",
        );
    c.kubectl(&["logs", "-n", "prod", "nope"])
        .code(1)
        .stderr_has("pods \"nope\" not found");
}

#[test]
fn rollout_restart_history_status_and_undo() {
    let c = prod();
    c.kubectl(&["rollout", "restart", "deploy/api", "-n", "prod"])
        .code(0)
        .stdout_has("deployment.apps/api restarted");
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .code(0)
        .json();
    assert!(
        !s(
            &dep,
            "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt"
        )
        .is_empty(),
        "{dep:#}"
    );
    assert_eq!(dep["metadata"]["generation"], 2);
    assert_eq!(
        s(
            &dep,
            "/metadata/annotations/deployment.kubernetes.io~1revision"
        ),
        "2"
    );

    let history = c.kubectl(&["rollout", "history", "deploy/api", "-n", "prod"]);
    history.code(0).stdout_has("REVISION");
    let revisions: Vec<&str> = history
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, ["1", "2"], "{}", history.stdout);
    // The new ReplicaSet's pods replaced the old ones.
    let new_rs = s(
        &dep,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    );
    assert_eq!(new_rs, "2");
    let pods = c
        .kubectl(&["get", "pods", "-n", "prod", "-o", "json"])
        .code(0)
        .json();
    let pods = pods["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(
        |p| !s(p, "/metadata/name").starts_with(&format!("{OLD_RS}-"))
            && s(p, "/status/phase") == "Running"
    ));
    // The controller recorded its scaling like the real deployment controller.
    c.kubectl(&["describe", "deploy", "api", "-n", "prod"])
        .code(0)
        .stdout_has("ScalingReplicaSet")
        .stdout_has(&format!("Scaled down replica set {OLD_RS} from 3 to 0"));

    c.kubectl(&[
        "rollout",
        "status",
        "deploy/api",
        "-n",
        "prod",
        "--timeout",
        "20s",
    ])
    .code(0)
    .stdout_has("deployment \"api\" successfully rolled out");

    c.kubectl(&["rollout", "undo", "deploy/api", "-n", "prod"])
        .code(0)
        .stdout_has("deployment.apps/api rolled back");
    // Undo puts the old template back: the original ReplicaSet is reused as revision 3.
    let old_rs = c.object("apps/v1", "replicasets", "prod", OLD_RS);
    assert_eq!(
        s(
            &old_rs,
            "/metadata/annotations/deployment.kubernetes.io~1revision"
        ),
        "3"
    );
    assert_eq!(old_rs["spec"]["replicas"], 3);
    let dep = c.object("apps/v1", "deployments", "prod", "api");
    assert!(
        dep.pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            .is_none()
    );
    assert_eq!(
        c.server.list("apps/v1", "replicasets", Some("prod")).len(),
        2
    );
    c.kubectl(&["rollout", "history", "deploy/api", "-n", "prod"])
        .code(0)
        .stdout_has("3 ");
}

#[test]
fn scale_changes_spec_and_status() {
    let c = prod();
    c.kubectl(&["scale", "deploy/api", "-n", "prod", "--replicas=5"])
        .code(0)
        .stdout_has("deployment.apps/api scaled");
    let dep = c.object("apps/v1", "deployments", "prod", "api");
    assert_eq!(dep["spec"]["replicas"], 5);
    assert_eq!(dep["status"]["replicas"], 5);
    assert_eq!(c.server.writes_for("deployments/scale"), 1);
    // The ReplicaSet "controller" adds running pods...
    assert_eq!(c.server.list("v1", "pods", Some("prod")).len(), 5);
    c.kubectl(&["scale", "deploy/api", "-n", "prod", "--replicas=1"])
        .code(0);
    // ...and removes not-ready pods first, then the newest: the fixture's ready pod stays.
    let left: Vec<String> = c
        .server
        .list("v1", "pods", Some("prod"))
        .iter()
        .map(|p| s(p, "/metadata/name").to_string())
        .collect();
    assert_eq!(left, [READY]);
    c.kubectl(&["scale", "deploy/api", "-n", "prod", "--replicas=5"])
        .code(0);
    c.kubectl(&["get", "deploy", "api", "-n", "prod"])
        .code(0)
        .stdout_has("5/5");
}

#[test]
fn patch_strategic_merge_and_json() {
    let c = prod();
    c.kubectl(&[
        "patch", "deploy", "api", "-n", "prod", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"registry.example.com/api:1.5.0"}]}}}}"#,
    ])
    .code(0)
    .stdout_has("deployment.apps/api patched");
    let dep = c.object("apps/v1", "deployments", "prod", "api");
    let container = &dep["spec"]["template"]["spec"]["containers"][0];
    // Strategic merge: the container was merged by name, so its env survived.
    assert_eq!(container["image"], "registry.example.com/api:1.5.0");
    assert_eq!(container["env"][0]["name"], "LOG_LEVEL");

    c.kubectl(&[
        "patch",
        "deploy",
        "api",
        "-n",
        "prod",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"team":"payments"}}}"#,
    ])
    .code(0);
    c.kubectl(&[
        "patch",
        "deploy",
        "api",
        "-n",
        "prod",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ])
    .code(0);
    let dep = c.object("apps/v1", "deployments", "prod", "api");
    assert_eq!(dep["metadata"]["labels"]["team"], "payments");
    assert_eq!(dep["spec"]["replicas"], 4);
    c.kubectl(&[
        "patch",
        "deploy",
        "api",
        "-n",
        "prod",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
    ])
    .code(1)
    .stderr_has("testing value /spec/replicas failed");
    c.kubectl(&["label", "node", "node-1", "disk=ssd"]).code(0);
    assert_eq!(
        c.object("v1", "nodes", "", "node-1")["metadata"]["labels"]["disk"],
        "ssd"
    );
}

const MANIFEST: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: prod
spec:
  replicas: 2
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      containers:
        - name: worker
          image: registry.example.com/worker:2.0.0
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: prod
data:
  mode: fast
";

#[test]
fn apply_server_side_creates_then_updates() {
    let c = prod();
    let manifest = c.file("manifest.yaml", MANIFEST);
    c.kubectl(&["apply", "--server-side", "-f", &manifest])
        .code(0)
        .stdout_has("deployment.apps/worker serverside-applied")
        .stdout_has("configmap/settings serverside-applied");
    let worker = c.object("apps/v1", "deployments", "prod", "worker");
    assert_eq!(worker["spec"]["replicas"], 2);
    assert_eq!(worker["metadata"]["managedFields"][0]["manager"], "kubectl");
    // The controller gave the new Deployment its first ReplicaSet.
    assert_eq!(
        s(
            &worker,
            "/metadata/annotations/deployment.kubernetes.io~1revision"
        ),
        "1"
    );

    let changed = c.file(
        "manifest2.yaml",
        &MANIFEST.replace("mode: fast", "mode: safe"),
    );
    c.kubectl(&["apply", "--server-side", "-f", &changed])
        .code(0);
    assert_eq!(
        c.object("v1", "configmaps", "prod", "settings")["data"]["mode"],
        "safe"
    );
}

#[test]
fn get_secret_as_json() {
    let c = prod();
    let secret = c
        .kubectl(&["get", "secret", "jwt", "-n", "prod", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(secret["kind"], "Secret");
    let data = secret["data"].as_object().expect("data");
    assert_eq!(data.len(), 2);
    assert_eq!(data["issuer"], "aHR0cHM6Ly9hdXRoLmV4YW1wbGUuY29t");
}

#[test]
fn drain_cordons_and_evicts() {
    let c = prod();
    c.kubectl(&[
        "drain",
        "node-1",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout",
        "30s",
    ])
    .code(0)
    .stdout_has("node/node-1 cordoned")
    .stdout_has(&format!("pod/{CRASH} evicted"))
    .stdout_has("node/node-1 drained");
    assert_eq!(
        c.object("v1", "nodes", "", "node-1")["spec"]["unschedulable"],
        true
    );
    assert_eq!(c.server.writes_for("pods/eviction"), 3);
    // The ReplicaSet replaced its evicted pods, but the only node is cordoned: Pending.
    let pods = c.server.list("v1", "pods", Some("prod"));
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| s(p, "/status/phase") == "Pending"
        && s(p, "/spec/nodeName").is_empty()
        && !s(p, "/metadata/name").ends_with("-ready")));
    c.kubectl(&["get", "nodes"])
        .code(0)
        .stdout_has("SchedulingDisabled");
    c.kubectl(&["get", "pods", "-n", "prod"])
        .code(0)
        .stdout_has("Pending");
}

#[test]
fn eviction_blocked_by_disruption_budget() {
    let yaml = format!(
        "{}\n---\n{}",
        super::fixture("prod.yaml"),
        "apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api, namespace: prod}
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: api}
"
    );
    let c = Cluster::with(&yaml, &[]);
    let eviction = c.file(
        "eviction.json",
        &format!(r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{READY}","namespace":"prod"}}}}"#),
    );
    let path = format!("/api/v1/namespaces/prod/pods/{READY}/eviction");
    c.kubectl(&["create", "--raw", &path, "-f", &eviction])
        .code(1)
        .stderr_has("Cannot evict pod as it would violate the pod's disruption budget");
    // The crash-looping pod is not ready: evicting it costs no availability.
    let crash_eviction = c.file(
        "crash.json",
        &std::fs::read_to_string(&eviction)
            .unwrap_or_default()
            .replace(READY, CRASH),
    );
    c.kubectl(&[
        "create",
        "--raw",
        &format!("/api/v1/namespaces/prod/pods/{CRASH}/eviction"),
        "-f",
        &crash_eviction,
    ])
    .code(0);
    assert!(c.server.get("v1", "pods", "prod", READY).is_some());
    assert!(c.server.get("v1", "pods", "prod", CRASH).is_none());
}

#[test]
fn server_dry_run_changes_nothing() {
    let c = prod();
    let rv = c.server.resource_version();
    let manifest = c.file("manifest.yaml", MANIFEST);
    for args in [
        vec![
            "scale",
            "deploy/api",
            "-n",
            "prod",
            "--replicas=9",
            "--dry-run=server",
        ],
        // What `rollout restart` sends (kubectl 1.32's restart has no --dry-run flag).
        vec![
            "patch",
            "deploy",
            "api",
            "-n",
            "prod",
            "--dry-run=server",
            "-p",
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}"#,
        ],
        vec![
            "set",
            "env",
            "deploy/api",
            "-n",
            "prod",
            "LOG_LEVEL=debug",
            "--dry-run=server",
        ],
        vec!["delete", "pod", CRASH, "-n", "prod", "--dry-run=server"],
        vec![
            "apply",
            "--server-side",
            "-f",
            &manifest,
            "--dry-run=server",
        ],
        vec!["drain", "node-1", "--ignore-daemonsets", "--dry-run=server"],
    ] {
        let out = c.kubectl(&args);
        out.code(0);
        // kubectl patch prints no dry-run suffix; the others do.
        if args[0] != "patch" {
            out.stdout_has("(server dry run)");
        }
    }
    assert_eq!(c.server.writes(), 0);
    assert_eq!(c.server.resource_version(), rv);
    let dep = c.object("apps/v1", "deployments", "prod", "api");
    assert_eq!(dep["spec"]["replicas"], 3);
    assert_eq!(dep["metadata"]["generation"], 1);
    assert!(
        c.server
            .get("apps/v1", "deployments", "prod", "worker")
            .is_none()
    );
    assert!(c.server.get("v1", "pods", "prod", CRASH).is_some());
}

#[test]
fn injected_failure_is_reported_by_kubectl() {
    let c = Cluster::with(
        &super::fixture("prod.yaml"),
        &[
            "GET:/api/v1/namespaces/prod/pods:403",
            "PATCH:/apis/apps/v1/namespaces/prod/deployments/*:500",
        ],
    );
    c.kubectl(&["get", "pods", "-n", "prod"])
        .code(1)
        .stderr_has("Error from server (Forbidden): pods is forbidden: User")
        .stderr_has("cannot list resource \"pods\" in API group \"\" in the namespace \"prod\"");
    c.kubectl(&["rollout", "restart", "deploy/api", "-n", "prod"])
        .code(1)
        .stderr_has("Internal error occurred: injected failure");
    assert_eq!(c.server.writes(), 0);
    // Other requests still work.
    c.kubectl(&["get", "deploy", "-n", "prod"])
        .code(0)
        .stdout_has("api");
}

#[test]
fn wrong_token_is_unauthorized() {
    let c = prod();
    c.kubectl(&["get", "pods", "--token", "not-the-token"])
        .code(1)
        // kubectl's wording for a 401.
        .stderr_has("You must be logged in to the server");
}

#[test]
fn stale_update_conflicts() {
    let c = prod();
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .code(0)
        .stdout
        .clone();
    let path = c.file("dep.json", &dep);
    c.kubectl(&["label", "deploy", "api", "-n", "prod", "touched=yes"])
        .code(0);
    c.kubectl(&["replace", "-f", &path]).code(1).stderr_has(
        "Operation cannot be fulfilled on deployments.apps \"api\": the object has been modified",
    );
    c.kubectl(&["create", "-f", &path])
        .code(1)
        .stderr_has("deployments.apps \"api\" already exists");
    // DeleteOptions preconditions guard deletes the same way.
    let pre = c.file(
        "pre.json",
        r#"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"not-the-uid"}}"#,
    );
    c.kubectl(&[
        "delete",
        "--raw",
        &format!("/api/v1/namespaces/prod/pods/{OOM}"),
        "-f",
        &pre,
    ])
    .code(1)
    .stderr_has("Precondition failed: uid in precondition: not-the-uid");
    assert!(c.server.get("v1", "pods", "prod", OOM).is_some());
}

#[test]
fn wait_follows_a_watch() {
    let c = prod();
    let kubeconfig = c.server.kubeconfig().to_path_buf();
    let cache = c.dir().join("cache-wait");
    // kubectl wait lists, then watches until the pod is gone.
    let waiter = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args([
            "wait",
            "--for=delete",
            &format!("pod/{OOM}"),
            "-n",
            "prod",
            "--timeout=30s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kubectl wait");
    c.await_watch("/api/v1/namespaces/prod/pods");
    c.kubectl(&["delete", "pod", OOM, "-n", "prod"]).code(0);
    let out = waiter.wait_with_output().expect("kubectl wait");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    assert!(
        c.server
            .requests()
            .iter()
            .any(|r| r.path == "/api/v1/namespaces/prod/pods" && r.query.contains("watch=true")),
        "kubectl wait never watched"
    );
}

#[test]
fn top_reads_metrics_from_annotations() {
    let c = prod();
    c.kubectl(&["top", "pods", "-n", "prod"])
        .code(0)
        .stdout_has("MEMORY(bytes)")
        .stdout_has("250Mi")
        .never_shows(CRASH);
    c.kubectl(&["top", "nodes"])
        .code(0)
        .stdout_has("1500m")
        .stdout_has("37%");
}

#[test]
fn auth_can_i_follows_fail_rules() {
    let c = Cluster::with(
        &super::fixture("prod.yaml"),
        &["GET:/api/v1/namespaces/prod/secrets*:403"],
    );
    c.kubectl(&["auth", "can-i", "get", "pods", "-n", "prod"])
        .code(0)
        .stdout_has("yes");
    c.kubectl(&["auth", "can-i", "get", "secrets/jwt", "-n", "prod"])
        .code(1)
        .stdout_has("no");
    c.kubectl(&["get", "secret", "jwt", "-n", "prod"])
        .code(1)
        .stderr_has("secrets \"jwt\" is forbidden");
}

#[test]
fn statefulset_service_configmap_and_lease() {
    let c = Cluster::start("misc.yaml");
    c.kubectl(&["rollout", "restart", "sts/db", "-n", "data"])
        .code(0)
        .stdout_has("statefulset.apps/db restarted");
    c.kubectl(&[
        "rollout",
        "status",
        "sts/db",
        "-n",
        "data",
        "--timeout",
        "20s",
    ])
    .code(0)
    .stdout_has("statefulset rolling update complete 2 pods at revision db-");
    let sts = c.object("apps/v1", "statefulsets", "data", "db");
    assert_eq!(sts["metadata"]["generation"], 2);
    c.kubectl(&["scale", "sts/db", "-n", "data", "--replicas=3"])
        .code(0);
    c.kubectl(&["get", "sts", "db", "-n", "data"])
        .code(0)
        .stdout_has("3/3");
    c.kubectl(&["get", "svc", "-n", "data"])
        .code(0)
        .stdout_has("10.96.0.20")
        .stdout_has("5432/TCP");
    c.kubectl(&[
        "get",
        "configmap",
        "db-config",
        "-n",
        "data",
        "-o",
        "jsonpath={.data.max_connections}",
    ])
    .code(0)
    .stdout_has("200");
    c.kubectl(&["get", "lease", "-n", "data"])
        .code(0)
        .stdout_has("db-0");
    c.kubectl(&["delete", "configmap", "db-config", "-n", "data"])
        .code(0)
        .stdout_has("configmap \"db-config\" deleted");
    assert!(
        c.server
            .get("v1", "configmaps", "data", "db-config")
            .is_none()
    );
}

#[test]
fn delete_cascades_unless_orphaned() {
    let c = prod();
    // Deleting a managed pod: its ReplicaSet starts a replacement on the node.
    c.kubectl(&["delete", "pod", CRASH, "-n", "prod"])
        .code(0)
        .stdout_has(&format!("pod \"{CRASH}\" deleted"));
    let pods = c.server.list("v1", "pods", Some("prod"));
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().any(
        |p| s(p, "/metadata/name").starts_with(&format!("{OLD_RS}-"))
            && s(p, "/metadata/name") != CRASH
            && s(p, "/status/phase") == "Running"
            && s(p, "/spec/nodeName") == "node-1"
    ));

    c.kubectl(&["delete", "rs", OLD_RS, "-n", "prod", "--cascade=orphan"])
        .code(0);
    assert_eq!(c.server.list("v1", "pods", Some("prod")).len(), 3);
    let c = prod();
    c.kubectl(&["delete", "deploy", "api", "-n", "prod"])
        .code(0)
        .stdout_has("deployment.apps \"api\" deleted");
    assert!(
        c.server
            .list("apps/v1", "replicasets", Some("prod"))
            .is_empty()
    );
    assert!(c.server.list("v1", "pods", Some("prod")).is_empty());
    c.kubectl(&[
        "get",
        "events",
        "-n",
        "prod",
        "--field-selector",
        &format!("involvedObject.name={CRASH}"),
    ])
    .code(0)
    .stdout_has("BackOff");
    c.kubectl(&["get", "pods", "-n", "prod", "-o", "wide"])
        .code(0)
        .stderr_has("No resources found in prod namespace.");
}

#[test]
fn counted_failures_then_recovery_and_midtest_changes() {
    let c = Cluster::with(
        &super::fixture("prod.yaml"),
        &["GET:/api/v1/namespaces/prod/pods:503@1"],
    );
    c.kubectl(&["get", "pods", "-n", "prod"])
        .code(1)
        .stderr_has("ServiceUnavailable");
    c.kubectl(&["get", "pods", "-n", "prod"])
        .code(0)
        .stdout_has(CRASH);
    c.server
        .set_failures(vec!["*:/apis/apps/v1/*:403".parse().expect("rule")]);
    c.kubectl(&["get", "deploy", "-n", "prod"])
        .code(1)
        .stderr_has("Forbidden");
    c.server.set_failures(Vec::new());

    // A watcher sees a change made through the in-process API.
    let kubeconfig = c.server.kubeconfig().to_path_buf();
    let waiter = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(c.dir().join("cache-wait"))
        .args([
            "wait",
            "--for=condition=Ready",
            &format!("pod/{CRASH}"),
            "-n",
            "prod",
            "--timeout=30s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kubectl wait");
    c.await_watch("/api/v1/namespaces/prod/pods");
    let uid = c.object("v1", "pods", "prod", CRASH)["metadata"]["uid"].clone();
    c.server
        .upsert(&format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: {CRASH}, namespace: prod, labels: {{app: api}}}}
spec:
  containers: [{{name: api, image: registry.example.com/api:1.4.2}}]
status:
  phase: Running
  conditions: [{{type: Ready, status: 'True'}}]
"
        ))
        .expect("upsert");
    let out = waiter.wait_with_output().expect("kubectl wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    assert_eq!(
        c.object("v1", "pods", "prod", CRASH)["metadata"]["uid"],
        uid
    );
    assert_eq!(c.server.writes(), 0);
    // (The gcloud kubectl dispatcher asks /version first with its own user agent.)
    assert!(
        c.server
            .requests()
            .iter()
            .any(|r| r.user_agent.starts_with("kubectl/v1.32")),
        "no request from kubectl 1.32"
    );
}

#[test]
fn get_watch_reports_selector_exits_and_entries() {
    let c = prod();
    let mut watcher = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(c.server.kubeconfig())
        .arg("--cache-dir")
        .arg(c.dir().join("cache-watch"))
        .args([
            "get",
            "pods",
            "-n",
            "prod",
            "-l",
            "app=api",
            "-w",
            "--output-watch-events",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kubectl get -w");
    // Lines as kubectl prints them, read on a thread so the test can wait for them.
    let stdout = watcher.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    c.await_watch("/api/v1/namespaces/prod/pods");
    c.kubectl(&[
        "label",
        "pod",
        OOM,
        "-n",
        "prod",
        "app=other",
        "--overwrite",
    ])
    .code(0);
    c.kubectl(&["label", "pod", OOM, "-n", "prod", "app=api", "--overwrite"])
        .code(0);
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while lines.iter().filter(|l: &&String| l.contains(OOM)).count() < 3 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    // Our own child, stopped by its handle.
    let _ = watcher.kill();
    let _ = watcher.wait();
    let _ = reader.join();
    let stdout = lines.join("\n");
    let events: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(_, name)| *name == OOM)
        .collect();
    assert_eq!(
        events,
        [("ADDED", OOM), ("DELETED", OOM), ("ADDED", OOM)],
        "{stdout}"
    );
    // Watch events carry table rows: the update shows pod columns, not just NAME/AGE.
    assert!(
        !stdout.contains("EVENT      NAME                  AGE"),
        "{stdout}"
    );
}

#[test]
fn protobuf_generators_are_refused_clearly() {
    // A known gap (see README): typed-client generators send protobuf.
    let c = prod();
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        "prod",
        "--from-literal=k=v",
    ])
    .code(1)
    .stderr_has("use `kubectl create -f`/`apply -f` instead");
    assert_eq!(c.server.writes(), 0);
    let manifest = c.file(
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s1, namespace: prod}\nstringData: {k: v}\n",
    );
    c.kubectl(&["create", "-f", &manifest])
        .code(0)
        .stdout_has("secret/s1 created");
    let secret = c.object("v1", "secrets", "prod", "s1");
    assert_eq!(secret["data"]["k"], "dg==");
    assert!(secret.get("stringData").is_none());
}

#[test]
fn crash_loop_annotation_is_reported_as_the_kubelet_would_and_a_restart_replaces_the_pods() {
    let c = Cluster::start("demo.yaml");
    let ns = ["-n", "tensafe"];
    c.kubectl(&["get", "pods", "-n", "tensafe", "-l", "app=api-gateway"])
        .code(0)
        .stdout_has("1/1     Running");
    c.kubectl(&[
        "annotate",
        "pods",
        "-n",
        "tensafe",
        "-l",
        "app=api-gateway",
        "opsctl-test/crash-loop=could not connect to Redis",
        "opsctl-test/previous-log=ERROR could not connect to Redis",
    ])
    .code(0);
    let pods = c
        .kubectl(&["get", "pods", "-n", "tensafe", "-l", "app=api-gateway"])
        .code(0)
        .stdout
        .clone();
    assert_eq!(
        pods.matches("0/1     CrashLoopBackOff   5 (").count(),
        3,
        "{pods}"
    );
    let name = "api-gateway-6b8d9c7f4-k2x7q";
    c.kubectl(&["describe", "pod", ns[0], ns[1], name])
        .code(0)
        .stdout_has("Reason:       CrashLoopBackOff")
        .stdout_has("Exit Code:    1")
        .stdout_has("Back-off restarting failed container api");
    c.kubectl(&["logs", "--previous", ns[0], ns[1], name])
        .code(0)
        .stdout_has("ERROR could not connect to Redis");
    // Annotating again changes nothing the kubelet reports: the restart count stays.
    c.kubectl(&[
        "annotate",
        "pod",
        ns[0],
        ns[1],
        name,
        "--overwrite",
        "opsctl-test/crash-loop=still no Redis",
    ])
    .code(0);
    let pod = c.object("v1", "pods", "tensafe", name);
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 5);
    assert_eq!(
        s(
            &pod,
            "/status/containerStatuses/0/lastState/terminated/message"
        ),
        "could not connect to Redis"
    );

    // A restart rolls out pods without the annotation: running and ready.
    c.kubectl(&["rollout", "restart", "deploy/api-gateway", ns[0], ns[1]])
        .code(0);
    let pods = c
        .kubectl(&["get", "pods", "-n", "tensafe", "-l", "app=api-gateway"])
        .code(0)
        .stdout
        .clone();
    assert_eq!(pods.matches("1/1     Running").count(), 3, "{pods}");
    assert!(
        !pods.contains("CrashLoopBackOff") && !pods.contains(name),
        "{pods}"
    );

    // A template with the annotation is a bad rollout: its new pods crash-loop.
    c.kubectl(&[
        "patch", "deploy/api-gateway", ns[0], ns[1], "--type=merge", "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"opsctl-test/crash-loop":"bad config"}}}}}"#,
    ])
    .code(0);
    let pods = c
        .kubectl(&["get", "pods", "-n", "tensafe", "-l", "app=api-gateway"])
        .code(0)
        .stdout
        .clone();
    assert_eq!(pods.matches("CrashLoopBackOff").count(), 3, "{pods}");
}

/// The kinds the seed runbooks read besides the workloads — Ingress, NetworkPolicy,
/// Endpoints, PersistentVolume, HorizontalPodAutoscaler, and the custom resources KEDA
/// ScaledObject and cert-manager Certificate — are served as kubectl expects: listed by
/// their short names, annotated, deleted.
#[test]
fn ingresses_hpas_volumes_and_the_seeds_custom_resources_are_served() {
    let c = Cluster::with(
        r#"
apiVersion: v1
kind: Namespace
metadata: { name: prod }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: api, namespace: prod }
spec: { rules: [{ host: api.example.com }] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny-all, namespace: prod }
spec: { podSelector: {} }
---
apiVersion: v1
kind: Endpoints
metadata: { name: api, namespace: prod }
subsets: [{ addresses: [{ ip: 10.0.0.5 }], ports: [{ port: 8080 }] }]
---
apiVersion: v1
kind: PersistentVolume
metadata: { name: pv-1 }
spec: { capacity: { storage: 10Gi }, accessModes: [ReadWriteOnce] }
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: { name: api, namespace: prod }
spec: { scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: api }, minReplicas: 2, maxReplicas: 10 }
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: { name: api-scaledobject, namespace: prod }
spec: { scaleTargetRef: { name: api } }
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: { name: api-tls, namespace: prod }
spec: { secretName: api-tls, dnsNames: [api.example.com] }
status: { conditions: [{ type: Ready, status: "True" }] }
"#,
        &[],
    );
    for (what, name) in [
        ("ing", "api"),
        ("netpol", "deny-all"),
        ("endpoints", "api"),
        ("hpa", "api"),
        ("scaledobject", "api-scaledobject"),
        ("certificate", "api-tls"),
    ] {
        c.kubectl(&["get", what, "-n", "prod"])
            .code(0)
            .stdout_has(name);
    }
    c.kubectl(&["get", "pv"]).code(0).stdout_has("pv-1");
    c.kubectl(&[
        "annotate",
        "scaledobject",
        "api-scaledobject",
        "-n",
        "prod",
        "autoscaling.keda.sh/paused=true",
    ])
    .code(0);
    let so = c
        .kubectl(&["get", "so", "api-scaledobject", "-n", "prod", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(
        s(&so, "/metadata/annotations/autoscaling.keda.sh~1paused"),
        "true"
    );
    c.kubectl(&["delete", "certificate", "api-tls", "-n", "prod"])
        .code(0);
    c.kubectl(&["get", "certificates", "-n", "prod"])
        .code(0)
        .stderr_has("No resources found");
}
