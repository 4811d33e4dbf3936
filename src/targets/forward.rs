//! Targets reached through the cluster (`via: { k8s: ... }`): a listener on a free local
//! port whose every connection is carried to a ready pod over an API-server port-forward
//! (the `portforward` subresource, a WebSocket), as `kubectl port-forward` does. Started
//! lazily, once per run and target, when the target's client is built; the target's pool
//! bounds how many connections (and so forwards) are open at once.
//!
//! The pod is chosen once, when the forward starts: the named pod, the first ready pod of
//! the selector, or of the Service's selector (its port mapped to its `targetPort`, named
//! ports looked up in the pod's containers).

use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::kube::{KubeClient, read};
use crate::actions::{ActionError, ErrorKind};
use crate::config::{Via, ViaTo};

/// A running forward: the local address to connect to. Dropping it stops the listener.
#[derive(Debug)]
pub struct Forward {
    pub local: SocketAddr,
    /// `pod/NAME:PORT in NS`, for messages.
    pub description: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a forward goes: a pod and a port on it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Destination {
    namespace: String,
    pod: String,
    port: u16,
}

/// Starts a forward for `via` (a target whose URL says `url_port`), after proving that the
/// API server opens a port-forward to the chosen pod (so a wrong name, a missing right or
/// a dead pod is said once, clearly, instead of as a reset connection per step).
pub async fn start(
    kube: Arc<KubeClient>,
    via: &Via,
    url_port: u16,
    what: &str,
) -> Result<Forward, ActionError> {
    let dest = destination(&kube, via, url_port).await.map_err(|e| {
        ActionError::new(e.kind(), format!("{what} via kubernetes: {}", e.message()))
    })?;
    let api: kube::Api<Pod> = kube::Api::namespaced(kube.client.clone(), &dest.namespace);
    let description = format!("pod/{}:{} in {}", dest.pod, dest.port, dest.namespace);
    // One forward now, to know it works.
    let probe = api
        .portforward(&dest.pod, &[dest.port])
        .await
        .map_err(|e| {
            crate::targets::kube::error(&format!("{what}: port-forward to {description}"), e)
        })?;
    probe.abort();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| {
            ActionError::new(
                ErrorKind::Failed,
                format!("{what}: cannot listen on 127.0.0.1 for the port-forward: {e}"),
            )
            .with_source(e)
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| ActionError::new(ErrorKind::Failed, format!("{what}: {e}")).with_source(e))?;
    let port = dest.port;
    let pod = dest.pod.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let api = api.clone();
            let pod = pod.clone();
            tokio::spawn(async move {
                let mut forwarder = match api.portforward(&pod, &[port]).await {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::debug!(target: "opsctl::forward", "port-forward to {pod}:{port}: {e}");
                        return;
                    }
                };
                let Some(mut upstream) = forwarder.take_stream(port) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                drop(upstream);
                let _ = forwarder.join().await;
            });
        }
    });
    Ok(Forward {
        local,
        description,
        task,
    })
}

/// The pod and port a `via` names.
async fn destination(
    kube: &KubeClient,
    via: &Via,
    url_port: u16,
) -> Result<Destination, ActionError> {
    let namespace = kube.namespace_or(via.namespace.as_deref());
    let port = via.port.unwrap_or(url_port);
    match &via.to {
        ViaTo::Pod(name) => Ok(Destination {
            namespace,
            pod: name.clone(),
            port,
        }),
        ViaTo::Selector(selector) => Ok(Destination {
            pod: kube.ready_pod(&namespace, selector).await?,
            namespace,
            port,
        }),
        ViaTo::Service(name) => {
            let api: kube::Api<Service> = kube::Api::namespaced(kube.client.clone(), &namespace);
            let svc = read(&format!("get service {name} in {namespace}"), || {
                api.get(name)
            })
            .await?;
            let spec = svc.spec.unwrap_or_default();
            let selector = spec
                .selector
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .ok_or_else(|| {
                    ActionError::new(
                        ErrorKind::Failed,
                        format!(
                            "service {name} in {namespace} has no selector: no pod to forward to"
                        ),
                    )
                })?;
            let pod_name = kube.ready_pod(&namespace, &selector).await?;
            let svc_ports = spec.ports.unwrap_or_default();
            let entry = match svc_ports.as_slice() {
                [only] if via.port.is_none() => Some(only),
                many => many.iter().find(|p| p.port == i32::from(port)),
            };
            let target = match entry.and_then(|p| p.target_port.clone()) {
                Some(IntOrString::Int(n)) => u16::try_from(n).ok(),
                Some(IntOrString::String(named)) => {
                    let pods: kube::Api<Pod> =
                        kube::Api::namespaced(kube.client.clone(), &namespace);
                    let pod = read(&format!("get pod {pod_name} in {namespace}"), || {
                        pods.get(&pod_name)
                    })
                    .await?;
                    named_port(&pod, &named)
                }
                None => entry.and_then(|p| u16::try_from(p.port).ok()),
            };
            let port = target.ok_or_else(|| {
                ActionError::new(
                    ErrorKind::Failed,
                    format!(
                        "service {name} in {namespace} has no port {port} (ports: {})",
                        svc_ports
                            .iter()
                            .map(|p| p.port.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            Ok(Destination {
                namespace,
                pod: pod_name,
                port,
            })
        }
    }
}

/// A container port of `pod` by its name.
fn named_port(pod: &Pod, name: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// What a forward asks of the Kubernetes API (for `opsctl rbac`): the port-forward itself
/// (a GET upgraded to a WebSocket, authorised as `create`, `get` on older servers) and
/// the reads that choose the pod.
pub fn kube_access(via: &Via) -> Vec<crate::actions::KubeAccess> {
    use crate::actions::{KubeAccess, KubeResource};
    let ns = via.namespace.as_deref();
    let mut out = vec![KubeAccess::new(
        KubeResource::sub::<Pod>("pods/portforward"),
        &["create", "get"],
        ns,
    )];
    match via.to {
        ViaTo::Pod(_) => {}
        ViaTo::Selector(_) => out.push(KubeAccess::new(KubeResource::of::<Pod>(), &["list"], ns)),
        ViaTo::Service(_) => {
            out.push(KubeAccess::new(KubeResource::of::<Service>(), &["get"], ns));
            out.push(KubeAccess::new(
                KubeResource::of::<Pod>(),
                &["get", "list"],
                ns,
            ));
        }
    }
    out
}
