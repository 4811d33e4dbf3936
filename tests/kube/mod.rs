//! The fake Kubernetes API server (examples/fake_apiserver), started in-process, and the
//! tests that prove it faithful by driving it with the real `kubectl`.

#[path = "../../examples/fake_apiserver/server.rs"]
pub mod fake_apiserver;

mod kubectl;
mod lock;
mod opsctl;
mod streams;
mod top;
mod via;

use std::path::Path;
use std::process::Command;

use crate::support::{Out, TempDir, repo};

/// A running fake API server with its own runtime (so a plain `#[test]` can block on kubectl
/// while the server keeps serving) and a temp dir for the kubeconfig and kubectl's cache.
pub struct Cluster {
    // Field order is drop order: the server stops before its runtime goes away.
    pub server: fake_apiserver::Running,
    _rt: tokio::runtime::Runtime,
    dir: TempDir,
}

/// The text of a fixture in tests/fixtures/kube/.
pub fn fixture(name: &str) -> String {
    let path = repo().join("tests/fixtures/kube").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Cluster {
    /// A server loaded with tests/fixtures/kube/`name`.
    pub fn start(name: &str) -> Cluster {
        Cluster::with(&fixture(name), &[])
    }

    /// A server loaded with `yaml`, answering requests that match `fail` rules
    /// (`METHOD:PATH:STATUS`) with that error.
    pub fn with(yaml: &str, fail: &[&str]) -> Cluster {
        Cluster::with_vars(yaml, fail, &[])
    }

    /// A server loaded with `yaml`, whose `${NAME}` references take their values from `vars`.
    pub fn with_vars(yaml: &str, fail: &[&str], vars: &[(&str, String)]) -> Cluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = TempDir::new();
        let opts = fake_apiserver::Options {
            listen: "127.0.0.1:0".parse().expect("address"),
            fixture_yaml: yaml.to_string(),
            kubeconfig: dir.path().join("kubeconfig"),
            fail: fail.iter().map(|f| f.parse().expect("fail rule")).collect(),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        let server = rt
            .block_on(fake_apiserver::start(opts))
            .unwrap_or_else(|e| panic!("fake API server: {e}"));
        Cluster {
            server,
            _rt: rt,
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file into the cluster's temp dir (manifests for `apply -f`), returning its path.
    pub fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write manifest");
        p.display().to_string()
    }

    /// Runs the real kubectl against this server (its own discovery cache, no user config).
    pub fn kubectl(&self, args: &[&str]) -> Out {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.server.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .output()
            .unwrap_or_else(|e| {
                panic!("running kubectl failed ({e}); these tests need kubectl on PATH")
            });
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Waits (up to 30 s, for a loaded machine) until some client watches `path`, so a
    /// test's next change reaches a live watch rather than an initial list.
    #[track_caller]
    pub fn await_watch(&self, path: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self
            .server
            .requests()
            .iter()
            .any(|r| r.path == path && r.query.contains("watch=true"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "nobody watched {path} within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// A stored object, or a panic naming what is missing.
    #[track_caller]
    pub fn object(
        &self,
        api_version: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> serde_json::Value {
        self.server
            .get(api_version, resource, ns, name)
            .unwrap_or_else(|| panic!("no {resource} {ns}/{name} in the store"))
    }
}
