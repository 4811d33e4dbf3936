//! The team lock (contract section 5): a run that is about to change something holds a
//! lock named after its runbook and environment, so two engineers paged for the same
//! outage never restart or roll back at the same moment.
//!
//! - With a cluster in the environment, the lock is a Kubernetes Lease
//!   (`coordination.k8s.io/v1`, `opsctl-<runbook>-<env>` in the environment's namespace):
//!   holder `user@host`, the run id and the holder's live step in annotations, renewed
//!   every few seconds while the run lasts and deleted at its end. A lease whose holder
//!   stopped renewing for longer than its duration is taken over (and the run says so).
//! - Without one, a lock file in the state directory, held with `flock` (the kernel lets go
//!   when the process dies, so it is never stale), does the same for one machine.
//!
//! The lock is taken before the first mutation, not at the start: read-only steps never
//! wait for it, and `plan` and `--dry-run` never take it. A second run finds it held and
//! its mutating steps end `error` naming the holder, since when and its live step — or,
//! with `--wait-lock`, wait for it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::actions::{ActionError, ErrorKind};
use crate::targets::Clients;

/// How long a lease lives without renewal before another run may take it over.
pub const LEASE_SECONDS: i32 = 30;
/// How often the holder renews (and publishes its live step).
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a run with `--wait-lock` looks again.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How many times (5 ms apart) a run that found the lock file held reads the holder's note
/// before it says "another run" (the holder writes it right after taking the lock).
const HOLDER_NOTE_TRIES: usize = 40;

const ANN_RUN_ID: &str = "opsctl.dev/run-id";
const ANN_STEP: &str = "opsctl.dev/step";
const ANN_RUNBOOK: &str = "opsctl.dev/runbook";
const ANN_ENV: &str = "opsctl.dev/env";

/// Who holds a lock, as a second run shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// `user@host`.
    pub who: String,
    pub run_id: String,
    pub since: Option<DateTime<Utc>>,
    /// The step the holder ran last.
    pub step: Option<String>,
}

impl Holder {
    fn describe(&self) -> String {
        let mut s = format!("{} (run {})", self.who, self.run_id);
        if let Some(since) = self.since {
            s.push_str(&format!(" since {}", since.format("%H:%M:%S UTC")));
        }
        if let Some(step) = &self.step {
            s.push_str(&format!(", at step `{step}`"));
        }
        s
    }
}

/// What this run knows of itself, written into the lock.
#[derive(Clone, Debug)]
struct Me {
    who: String,
    run_id: String,
    runbook: String,
    env: String,
}

enum Backend {
    Lease,
    File(PathBuf),
}

enum State {
    Free,
    Held(HeldBy),
}

enum HeldBy {
    Lease {
        namespace: String,
        name: String,
        renew: CancellationToken,
    },
    File(std::fs::File),
}

/// One run's team lock; shared by its nested runs.
pub struct TeamLock {
    me: Me,
    backend: Backend,
    wait: bool,
    state: tokio::sync::Mutex<State>,
    step: Arc<Mutex<Option<String>>>,
    /// Said once when this run took over a stale lease.
    pub took_over: Mutex<Option<Holder>>,
}

/// The lock's name for a runbook in an environment: a DNS label (lowercase letters,
/// digits, `-`; at most 63 characters).
pub fn lock_name(runbook: &str, env: &str) -> String {
    let raw = format!("opsctl-{runbook}-{env}").to_ascii_lowercase();
    let mut name: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// What the lease asks of the Kubernetes API (RBAC for a run that mutates, `opsctl rbac`):
/// read it, create it, take a stale one over (update), renew it (patch) and release it
/// (delete), in the environment's namespace.
pub fn kube_access() -> crate::actions::KubeAccess {
    crate::actions::KubeAccess::new(
        crate::actions::KubeResource::of::<Lease>(),
        &["create", "delete", "get", "patch", "update"],
        None,
    )
}

impl TeamLock {
    /// The lock of `runbook` in environment `env`: a Lease when the environment has a
    /// cluster, else a file under `state_dir`.
    pub fn new(
        runbook: &str,
        env: &crate::config::EnvConfig,
        run_id: &str,
        user: &str,
        wait: bool,
        state_dir: PathBuf,
    ) -> TeamLock {
        let backend = if env.targets.contains_key("kubernetes") {
            Backend::Lease
        } else {
            Backend::File(
                state_dir
                    .join("locks")
                    .join(format!("{}.lock", lock_name(runbook, &env.name))),
            )
        };
        TeamLock {
            me: Me {
                who: format!("{user}@{}", super::current_host()),
                run_id: run_id.to_string(),
                runbook: runbook.to_string(),
                env: env.name.clone(),
            },
            backend,
            wait,
            state: tokio::sync::Mutex::new(State::Free),
            step: Arc::new(Mutex::new(None)),
            took_over: Mutex::new(None),
        }
    }

    /// Makes sure this run holds the lock before step `path` changes something: takes it
    /// the first time (waiting for it with `--wait-lock`), and notes the live step.
    pub async fn ensure(
        &self,
        path: &str,
        clients: &Clients,
        cancel: &CancellationToken,
    ) -> Result<(), ActionError> {
        if let Ok(mut s) = self.step.lock() {
            *s = Some(path.to_string());
        }
        let mut state = self.state.lock().await;
        if matches!(*state, State::Held(_)) {
            return Ok(());
        }
        let mut said_wait = false;
        loop {
            let attempt = match &self.backend {
                Backend::Lease => self.try_lease(clients).await?,
                Backend::File(file) => self.try_file(file)?,
            };
            match attempt {
                Ok(held) => {
                    *state = State::Held(held);
                    if let Some(stale) = self.took_over.lock().ok().and_then(|t| t.clone()) {
                        eprintln!(
                            "opsctl: took over the team lock of `{}` in {}: its holder {} stopped renewing it more than {LEASE_SECONDS}s ago",
                            self.me.runbook,
                            self.me.env,
                            stale.describe()
                        );
                    }
                    return Ok(());
                }
                Err(holder) if self.wait => {
                    if !said_wait {
                        said_wait = true;
                        eprintln!(
                            "opsctl: waiting for the team lock: `{}` in {} is being handled by {}",
                            self.me.runbook,
                            self.me.env,
                            holder.describe()
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(POLL_EVERY) => {}
                        () = cancel.cancelled() => {
                            return Err(ActionError::new(
                                ErrorKind::Refused,
                                format!("cancelled while waiting for the team lock held by {}", holder.describe()),
                            ));
                        }
                    }
                }
                Err(holder) => {
                    return Err(ActionError::new(
                        ErrorKind::Refused,
                        format!(
                            "not run: `{}` in {} is being handled by {}; pass --wait-lock to wait for it",
                            self.me.runbook,
                            self.me.env,
                            holder.describe()
                        ),
                    ));
                }
            }
        }
    }

    /// Lets go of the lock (if held): deletes the lease, unlocks the file.
    pub async fn release(&self, clients: &Clients) {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, State::Free) {
            State::Free => {}
            State::Held(HeldBy::File(file)) => {
                // Empty the file so a reader sees no holder, then unlock (closing does).
                let _ = file.set_len(0);
                drop(file);
            }
            State::Held(HeldBy::Lease {
                namespace,
                name,
                renew,
            }) => {
                renew.cancel();
                if let Ok(kube) = clients.kube().await {
                    let api: kube::Api<Lease> =
                        kube::Api::namespaced(kube.client.clone(), &namespace);
                    // Only our own lease: if it was taken over meanwhile, it is not ours.
                    if let Ok(Some(lease)) = api.get_opt(&name).await {
                        if run_id_of(&lease).as_deref() == Some(self.me.run_id.as_str()) {
                            let dp = kube::api::DeleteParams {
                                preconditions: Some(kube::api::Preconditions {
                                    uid: lease.metadata.uid.clone(),
                                    resource_version: lease.metadata.resource_version.clone(),
                                }),
                                ..Default::default()
                            };
                            if let Err(e) = api.delete(&name, &dp).await {
                                tracing::warn!(target: "opsctl::lock", "could not release the lease {namespace}/{name}: {e}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// One try at the lock file: `Ok(Ok(file))` holds it, `Ok(Err(holder))` someone else does.
    /// Reading the holder's note waits at most `HOLDER_NOTE_TRIES` × 5 ms for it.
    fn try_file(&self, path: &PathBuf) -> Result<Result<HeldBy, Holder>, ActionError> {
        use std::io::{Read as _, Seek as _, Write as _};
        use std::os::fd::AsRawFd as _;
        let io_err = |what: &str, e: std::io::Error| {
            ActionError::new(
                ErrorKind::Failed,
                format!("team lock {}: {what}: {e}", path.display()),
            )
            .with_source(e)
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create its directory", e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_err("cannot open", e))?;
        // SAFETY: flock on a descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_err("cannot lock", err));
            }
            // The holder writes who it is right after it takes the lock: read until that
            // is there (an empty file, or a previous holder's note, means it is not yet).
            let mut v = serde_json::Value::Null;
            for _ in 0..HOLDER_NOTE_TRIES {
                let mut text = String::new();
                let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
                v = serde_json::from_str(&text).unwrap_or_default();
                let pid = v.get("pid").and_then(serde_json::Value::as_i64);
                // SAFETY: kill with signal 0 only checks that the process exists.
                let alive = pid
                    .and_then(|p| i32::try_from(p).ok())
                    .is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
                if alive {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            return Ok(Err(Holder {
                who: field("holder").unwrap_or_else(|| "another run on this machine".into()),
                run_id: field("run_id").unwrap_or_else(|| "?".into()),
                since: field("since")
                    .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                    .map(|t| t.with_timezone(&Utc)),
                step: field("step"),
            }));
        }
        let info = json!({
            "holder": self.me.who,
            "run_id": self.me.run_id,
            "runbook": self.me.runbook,
            "env": self.me.env,
            "since": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "step": self.step.lock().ok().and_then(|s| s.clone()),
            "pid": std::process::id(),
        });
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(info.to_string().as_bytes()))
            .map_err(|e| io_err("cannot write", e))?;
        Ok(Ok(HeldBy::File(file)))
    }

    /// One try at the lease: create it, or take it over when free or stale.
    async fn try_lease(&self, clients: &Clients) -> Result<Result<HeldBy, Holder>, ActionError> {
        let kube = clients.kube().await?;
        let namespace = kube.namespace.clone();
        let name = lock_name(&self.me.runbook, &self.me.env);
        let api: kube::Api<Lease> = kube::Api::namespaced(kube.client.clone(), &namespace);
        let what = format!("team lock lease {namespace}/{name}");
        let err = |e: kube::Error| crate::targets::kube::error(&what, e);
        for _ in 0..3 {
            let now = micro_time(Utc::now());
            let existing = api.get_opt(&name).await.map_err(err)?;
            let result = match existing {
                None => {
                    let lease = self.new_lease(&name, &now, 0, None)?;
                    api.create(&kube::api::PostParams::default(), &lease).await
                }
                Some(lease) => {
                    let holder = holder_of(&lease);
                    let mine = run_id_of(&lease).as_deref() == Some(self.me.run_id.as_str());
                    let free = holder.is_none() || is_stale(&lease, Utc::now());
                    if !mine && !free {
                        return Ok(Err(holder.unwrap_or(Holder {
                            who: "?".into(),
                            run_id: "?".into(),
                            since: None,
                            step: None,
                        })));
                    }
                    if !mine {
                        if let (Some(h), Ok(mut t)) = (holder, self.took_over.lock()) {
                            *t = Some(h);
                        }
                    }
                    let transitions = lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.lease_transitions)
                        .unwrap_or(0);
                    let replacement = self.new_lease(
                        &name,
                        &now,
                        transitions + 1,
                        lease.metadata.resource_version.clone(),
                    )?;
                    api.replace(&name, &kube::api::PostParams::default(), &replacement)
                        .await
                }
            };
            match result {
                Ok(_) => {
                    let renew = CancellationToken::new();
                    self.spawn_renewal(api.clone(), name.clone(), renew.clone());
                    return Ok(Ok(HeldBy::Lease {
                        namespace,
                        name,
                        renew,
                    }));
                }
                // Another run created or took it between our read and our write: look again.
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Err(ActionError::new(
            ErrorKind::Failed,
            format!("{what}: it kept changing under us; try again"),
        ))
    }

    fn new_lease(
        &self,
        name: &str,
        now: &str,
        transitions: i32,
        resource_version: Option<String>,
    ) -> Result<Lease, ActionError> {
        let step = self
            .step
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or_default();
        let mut v = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": "opsctl"},
                "annotations": {
                    ANN_RUN_ID: self.me.run_id,
                    ANN_STEP: step,
                    ANN_RUNBOOK: self.me.runbook,
                    ANN_ENV: self.me.env,
                },
            },
            "spec": {
                "holderIdentity": self.me.who,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        });
        if let Some(rv) = resource_version {
            v["metadata"]["resourceVersion"] = json!(rv);
        }
        serde_json::from_value(v).map_err(|e| {
            ActionError::new(
                ErrorKind::Failed,
                format!("team lock: cannot build the lease: {e}"),
            )
        })
    }

    /// Renews the lease and publishes the live step until `stop`.
    fn spawn_renewal(&self, api: kube::Api<Lease>, name: String, stop: CancellationToken) {
        let step = self.step.clone();
        let run_id = self.me.run_id.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RENEW_EVERY) => {}
                }
                let live = step.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
                let patch = json!({
                    "metadata": {"annotations": {ANN_STEP: live, ANN_RUN_ID: run_id}},
                    "spec": {"renewTime": micro_time(Utc::now())},
                });
                let r = api
                    .patch(
                        &name,
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await;
                if let Err(e) = r {
                    tracing::warn!(target: "opsctl::lock", "could not renew the team lock {name}: {e}");
                }
            }
        });
    }
}

/// Kubernetes MicroTime: RFC 3339 with microseconds, UTC.
fn micro_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn to_chrono(
    t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime,
) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.0.as_millisecond())
}

fn run_id_of(lease: &Lease) -> Option<String> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_RUN_ID))
        .cloned()
}

fn holder_of(lease: &Lease) -> Option<Holder> {
    let spec = lease.spec.as_ref()?;
    let who = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let ann = lease.metadata.annotations.as_ref();
    Some(Holder {
        who,
        run_id: run_id_of(lease).unwrap_or_else(|| "?".into()),
        since: spec.acquire_time.as_ref().and_then(to_chrono),
        step: ann
            .and_then(|a| a.get(ANN_STEP))
            .filter(|s| !s.is_empty())
            .cloned(),
    })
}

/// A lease whose holder has not renewed it within its duration.
fn is_stale(lease: &Lease, now: DateTime<Utc>) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    let last = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .and_then(to_chrono);
    last.is_none_or(|t| now.signed_duration_since(t).num_seconds() > duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_are_dns_labels() {
        assert_eq!(
            lock_name("sev1-outage", "production"),
            "opsctl-sev1-outage-production"
        );
        assert_eq!(lock_name("Fix_DB", "eu.west"), "opsctl-fix-db-eu-west");
        let long = lock_name(&"x".repeat(100), "prod");
        assert!(long.len() <= 63 && !long.ends_with('-'));
    }

    #[test]
    fn a_lease_not_renewed_within_its_duration_is_stale() {
        let lease = |renewed: DateTime<Utc>| -> Lease {
            serde_json::from_value(json!({
                "metadata": {"name": "l"},
                "spec": {"holderIdentity": "a@b", "leaseDurationSeconds": 30,
                         "renewTime": micro_time(renewed)},
            }))
            .expect("lease")
        };
        let now = Utc::now();
        assert!(!is_stale(&lease(now - chrono::Duration::seconds(10)), now));
        assert!(is_stale(&lease(now - chrono::Duration::seconds(31)), now));
    }
}
