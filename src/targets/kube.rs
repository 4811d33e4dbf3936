//! The Kubernetes client of a run: kube-rs over rustls (ring), configured as kubectl is —
//! `KUBECONFIG` (several files), `~/.kube/config`, exec credential plugins, the in-cluster
//! service account — with the environment's `context` and `namespace`. Built once per run
//! on first use; discovery (which kinds the server has) is asked once and shared.

use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};

use crate::actions::{ActionError, ErrorKind};
use crate::config::KubeTarget;

/// A cluster connection and the namespace steps use by default.
pub struct KubeClient {
    pub client: kube::Client,
    /// The environment's `namespace`, else the kubeconfig context's, else `default`.
    pub namespace: String,
    discovery: tokio::sync::OnceCell<Result<Arc<Discovery>, String>>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Reads the kubeconfig (or the in-cluster account) and builds the client. Nothing is
/// contacted yet.
pub async fn connect(t: &KubeTarget) -> Result<Arc<KubeClient>, ActionError> {
    let config = match &t.context {
        Some(context) => {
            let options = KubeConfigOptions {
                context: Some(context.clone()),
                ..KubeConfigOptions::default()
            };
            let kubeconfig = Kubeconfig::read().map_err(|e| {
                ActionError::Config(format!("kubernetes: cannot read the kubeconfig: {e}"))
                    .with_source(e)
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    ActionError::Config(format!("kubernetes: context `{context}`: {e}"))
                        .with_source(e)
                })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            ActionError::Config(format!(
                "kubernetes: no cluster configured (KUBECONFIG, ~/.kube/config or an in-cluster service account): {e}"
            ))
            .with_source(e)
        })?,
    };
    let namespace = t
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| {
        ActionError::Config(format!("kubernetes: cannot build the client: {e}")).with_source(e)
    })?;
    Ok(Arc::new(KubeClient {
        client,
        namespace,
        discovery: tokio::sync::OnceCell::new(),
    }))
}

impl KubeClient {
    /// The namespace of a step: its own, else the client's.
    pub fn namespace_or(&self, ns: Option<&str>) -> String {
        ns.map_or_else(|| self.namespace.clone(), str::to_string)
    }

    /// The server's discovery, asked once per run.
    async fn discovery(&self) -> Result<Arc<Discovery>, ActionError> {
        self.discovery
            .get_or_init(|| async {
                Discovery::new(self.client.clone())
                    .run()
                    .await
                    .map(Arc::new)
                    .map_err(|e| error_text(&e))
            })
            .await
            .clone()
            .map_err(ActionError::Unreachable)
    }

    /// The API resource of a manifest's `apiVersion` and `kind`.
    pub async fn resource_of(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), ActionError> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        self.discovery().await?.resolve_gvk(&gvk).ok_or_else(|| {
            ActionError::InvalidArgs(format!(
                "kubernetes: the server does not serve {kind} in {api_version}"
            ))
        })
    }

    /// The API resource a `kind` names (`Deployment`, `deployments`, `deploy`,
    /// `configmap`, a custom resource's kind), from the server's discovery (asked once).
    pub async fn resource(
        &self,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), ActionError> {
        let discovery = self.discovery().await?;
        let wanted = kind.to_ascii_lowercase();
        let short = |ar: &ApiResource| crate::actions::access::short_name(&ar.plural);
        let mut found = None;
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                let matches = ar.kind.to_ascii_lowercase() == wanted
                    || ar.plural == wanted
                    || short(&ar) == Some(wanted.as_str());
                if matches && found.is_none() {
                    found = Some((ar, caps));
                }
            }
        }
        found.ok_or_else(|| {
            ActionError::InvalidArgs(format!(
                "kubernetes: the server has no kind `{kind}` (it lists the kinds it serves in its discovery)"
            ))
        })
    }

    /// The API of the kind a step names, in its namespace (or the client's): the API,
    /// the resource, and the namespace used.
    pub async fn api_for(
        &self,
        kind: &str,
        ns: Option<&str>,
    ) -> Result<(kube::Api<kube::api::DynamicObject>, ApiResource, String), ActionError> {
        let ns = self.namespace_or(ns);
        let (ar, caps) = self.resource(kind).await?;
        Ok((self.dynamic(&ar, &caps, &ns), ar, ns))
    }

    /// An API for `ar` in `namespace` (ignored for cluster-wide kinds).
    pub fn dynamic(
        &self,
        ar: &ApiResource,
        caps: &ApiCapabilities,
        namespace: &str,
    ) -> kube::Api<kube::api::DynamicObject> {
        match caps.scope {
            Scope::Namespaced => kube::Api::namespaced_with(self.client.clone(), namespace, ar),
            Scope::Cluster => kube::Api::all_with(self.client.clone(), ar),
        }
    }
}

/// A kube error as a step's error: classified by the API's status code and reason (not
/// by its text), one line, with the error as its source.
pub fn error(what: &str, e: kube::Error) -> ActionError {
    let (kind, text) = match &e {
        kube::Error::Api(status) => {
            let kind = match status.code {
                401 => ErrorKind::Auth,
                403 => ErrorKind::Auth,
                404 | 409 | 422 | 400 => ErrorKind::Failed,
                429 | 500..=599 => ErrorKind::Unreachable,
                _ => ErrorKind::Failed,
            };
            let text = match status.code {
                403 => format!("forbidden: {}", status.message),
                401 => format!(
                    "unauthorized (credentials expired or wrong?): {}",
                    status.message
                ),
                _ => format!("{} ({}): {}", status.reason, status.code, status.message),
            };
            (kind, text)
        }
        other => (ErrorKind::Unreachable, error_text(other)),
    };
    ActionError::new(kind, format!("kubernetes: {what}: {text}")).with_source(e)
}

fn error_text(e: &kube::Error) -> String {
    // The innermost cause says what happened ("connection refused"), not the wrappers.
    let mut text = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        text = s.to_string();
        cur = s.source();
    }
    crate::targets::messages::one_line(&text)
}

/// Runs a read (a GET or LIST, safe to repeat) again when the server answers 429 or 5xx,
/// up to four times with growing pauses. The step's timeout bounds it all.
pub async fn read<T, F, Fut>(what: &str, mut call: F) -> Result<T, ActionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    const ATTEMPTS: u32 = 4;
    let mut pause = std::time::Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(kube::Error::Api(s)) if (s.code == 429 || s.code >= 500) && attempt < ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            Err(e) => return Err(error(what, e)),
        }
    }
}

/// A pod that can take a connection: Running, with its `Ready` condition true.
pub fn pod_ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

impl KubeClient {
    /// The first ready pod (by name) of `selector` in `ns`, as `kubectl exec` and
    /// `kubectl port-forward` pick one behind a workload.
    pub async fn ready_pod(&self, ns: &str, selector: &str) -> Result<String, ActionError> {
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(self.client.clone(), ns);
        let lp = kube::api::ListParams::default().labels(selector);
        let list = read(&format!("list pods {selector} in {ns}"), || api.list(&lp)).await?;
        let mut ready: Vec<String> = list
            .items
            .iter()
            .filter(|p| pod_ready(p))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        ready.sort();
        ready.into_iter().next().ok_or_else(|| {
            ActionError::new(
                ErrorKind::Failed,
                format!(
                    "kubernetes: no ready pod matches {selector} in {ns} ({} matched)",
                    list.items.len()
                ),
            )
        })
    }
}
