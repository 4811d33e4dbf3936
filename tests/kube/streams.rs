//! The streaming subresources of the test API server, driven by the real kubectl (`exec`,
//! `port-forward` to a pod and to a Service) and by kube-rs's own clients (`Api::exec`,
//! `Api::portforward`), with real Postgres and Redis at the far end of the tunnels.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Cluster, fixture};
use crate::support::service_url;

/// `host:port` of a service URL (`postgres://user:pw@127.0.0.1:5432/db`).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

fn redis_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
    let pw = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!pw.is_empty()).then(|| pw.to_string())
}

/// The streams fixture, its forwards pointing at the test Postgres and Redis.
fn streams() -> Cluster {
    Cluster::with_vars(
        &fixture("streams.yaml"),
        &[],
        &[
            (
                "OPSCTL_TEST_PG_ADDR",
                host_port(&service_url("OPSCTL_TEST_DATABASE_URL")),
            ),
            (
                "OPSCTL_TEST_REDIS_ADDR",
                host_port(&service_url("OPSCTL_TEST_REDIS_URL")),
            ),
        ],
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Postgres answers `SELECT` through `stream` (a forwarded local port or a kube-rs stream).
async fn postgres_answers<S>(stream: S) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let url: tokio_postgres::Config = service_url("OPSCTL_TEST_DATABASE_URL")
        .parse()
        .expect("OPSCTL_TEST_DATABASE_URL");
    let (client, conn) = url
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .expect("Postgres through the forward");
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT current_user::text || ' via forward'", &[])
        .await
        .expect("query through the forward");
    row.get(0)
}

/// Redis answers PING (after AUTH, if the URL has a password) through `stream`.
async fn redis_pings<S>(mut stream: S) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    if let Some(pw) = redis_password(&service_url("OPSCTL_TEST_REDIS_URL")) {
        out.extend(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n", pw.len()).into_bytes());
    }
    out.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    stream.write_all(&out).await.expect("send to Redis");
    let mut got = String::new();
    let mut buf = [0u8; 256];
    while !got.contains("PONG") && !got.contains("-ERR") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("Redis answers within 10 s")
            .expect("read from Redis");
        assert!(n > 0, "Redis closed the forward early: {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

/// A running `kubectl port-forward`, stopped (by its pid) on drop.
struct PortForward {
    child: std::process::Child,
    port: u16,
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_forward(c: &Cluster, target: &str, remote: u16, env: &[(&str, &str)]) -> PortForward {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(c.server.kubeconfig())
        .arg("--cache-dir")
        .arg(c.dir().join(format!("cache-{}", target.replace('/', "-"))))
        .args(["port-forward", "-n", "prod", target, &format!(":{remote}")])
        .args(["--address", "127.0.0.1"])
        .env("HOME", c.dir())
        .env_remove("KUBECONFIG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep reading after the first line: kubectl prints "Handling connection for …" per
        // connection, and a closed pipe would kill it (SIGPIPE).
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // "Forwarding from 127.0.0.1:40123 -> 5432"
    let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        let out = child.wait_with_output().expect("kubectl port-forward");
        panic!(
            "kubectl port-forward {target} printed no port: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let port = line
        .split_once("127.0.0.1:")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no local port in {line:?}"));
    assert!(
        line.ends_with(&format!("-> {remote}")) || line.contains("->"),
        "{line}"
    );
    PortForward { child, port }
}

#[test]
fn kubectl_exec_runs_a_real_process() {
    let c = streams();
    // Exit code, both streams and the pod's environment are real.
    let out = c.kubectl(&[
        "exec",
        "-n",
        "prod",
        "tools-0",
        "--",
        "sh",
        "-c",
        "echo \"$POD_NAME/$POD_NAMESPACE/$CONTAINER: $GREETING\"; echo oops >&2; exit 3",
    ]);
    out.code(3)
        .stdout_has("tools-0/prod/tools: hello from the pod")
        .stderr_has("oops")
        .stderr_has("command terminated with exit code 3");
    // kubectl 1.32 spoke WebSocket (v5), not SPDY.
    let exec = c
        .server
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/namespaces/prod/pods/tools-0/exec")
        .expect("an exec request");
    assert_eq!((exec.method.as_str(), exec.status), ("GET", 101));
    assert!(exec.query.contains("command=sh"), "{}", exec.query);

    c.kubectl(&["exec", "-n", "prod", "tools-0", "--", "true"])
        .code(0);

    // Stdin with -i: the process reads it to its end.
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(c.server.kubeconfig())
        .arg("--cache-dir")
        .arg(c.dir().join("cache"))
        .args(["exec", "-i", "-n", "prod", "tools-0", "--", "sh", "-c"])
        .arg("tr a-z A-Z; echo \"read $(pwd | grep -c tools-0) scratch dir\"")
        .env("HOME", c.dir())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl exec -i");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"from stdin\n").expect("write stdin");
    }
    let out = child.wait_with_output().expect("kubectl exec -i");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "FROM STDIN\nread 1 scratch dir\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));

    // What the real server and kubelet refuse.
    c.kubectl(&["exec", "-n", "prod", "tools-0", "-c", "nope", "--", "true"])
        .code(1)
        .stderr_has("container nope is not valid for pod tools-0");
    c.kubectl(&[
        "exec", "-n", "prod", "tools-0", "-c", "sidecar", "--", "true",
    ])
    .code(1)
    .stderr_has("container not found (\"sidecar\")");
    c.kubectl(&["exec", "-n", "prod", "migrate-0", "--", "true"])
        .code(1)
        .stderr_has("cannot exec into a container in a completed pod; current phase is Succeeded");
    c.kubectl(&["exec", "-n", "prod", "nope-0", "--", "true"])
        .code(1)
        .stderr_has("pods \"nope-0\" not found");
    c.kubectl(&[
        "exec",
        "-n",
        "prod",
        "tools-0",
        "--",
        "no-such-command-here",
    ])
    .code(1)
    .stderr_has("exec: \"no-such-command-here\"");
}

#[test]
fn kubectl_port_forward_reaches_postgres_and_redis() {
    let c = streams();
    let rt = runtime();
    // To a pod, SPDY tunnelled over WebSocket (kubectl 1.32's default).
    let pf = port_forward(&c, "pod/db-0", 5432, &[]);
    let answer = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", pf.port))
            .await
            .expect("connect to the forwarded port");
        postgres_answers(tcp).await
    });
    assert!(answer.ends_with(" via forward"), "{answer}");
    // A second connection through the same port-forward gets its own streams.
    let again = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", pf.port))
            .await
            .expect("connect again");
        postgres_answers(tcp).await
    });
    assert_eq!(answer, again);
    drop(pf);

    // To a Service: kubectl picks a pod by the selector and maps the named target port.
    let pf = port_forward(&c, "svc/db", 5432, &[]);
    let answer = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", pf.port))
            .await
            .expect("connect to the forwarded service port");
        postgres_answers(tcp).await
    });
    assert!(answer.ends_with(" via forward"), "{answer}");
    drop(pf);
    // svc/redis: service port 16379 is the pod's 6379.
    let pf = port_forward(&c, "svc/redis", 16379, &[]);
    let pong = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", pf.port))
            .await
            .expect("connect to the forwarded Redis port");
        redis_pings(tcp).await
    });
    assert!(pong.ends_with("+PONG\r\n"), "{pong:?}");
    drop(pf);

    // kubectl's fallback, plain SPDY/3.1 on the upgraded connection.
    let pf = port_forward(
        &c,
        "pod/redis-0",
        6379,
        &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")],
    );
    let pong = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", pf.port))
            .await
            .expect("connect to the forwarded Redis port");
        redis_pings(tcp).await
    });
    assert!(pong.ends_with("+PONG\r\n"), "{pong:?}");
    drop(pf);

    let upgrades: Vec<(String, String, u16)> = c
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .map(|r| (r.method, r.path, r.status))
        .collect();
    let p = |pod: &str| format!("/api/v1/namespaces/prod/pods/{pod}/portforward");
    assert_eq!(
        upgrades,
        [
            ("GET".into(), p("db-0"), 101),
            ("GET".into(), p("db-0"), 101),
            ("GET".into(), p("redis-0"), 101),
            // SPDY upgrades are POSTs.
            ("POST".into(), p("redis-0"), 101),
        ]
    );
}

#[test]
fn kubectl_port_forward_reports_a_port_that_leads_nowhere() {
    let c = streams();
    let rt = runtime();
    // redis-0 forwards only 6379.
    let mut pf = port_forward(&c, "pod/redis-0", 6380, &[]);
    rt.block_on(async {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", pf.port))
            .await
            .expect("connect");
        let mut buf = [0u8; 16];
        // The connection to the pod fails: kubectl closes the local one.
        let n = tokio::time::timeout(Duration::from_secs(20), tcp.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    });
    let _ = pf.child.kill();
    let out = std::mem::replace(&mut pf.child, Command::new("true").spawn().expect("true"))
        .wait_with_output()
        .expect("kubectl port-forward");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error forwarding port 6380 to pod redis-0"),
        "{stderr}"
    );
}

#[test]
fn kube_rs_exec_and_portforward() {
    let c = streams();
    let rt = runtime();
    rt.block_on(async {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(c.server.kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kube config");
        let client = kube::Client::try_from(config).expect("kube client");
        let pods: Api<Pod> = Api::namespaced(client, "prod");

        // exec: stdout, stderr, stdin and the exit code's Status.
        let mut p = pods
            .exec(
                "tools-0",
                ["sh", "-c", "echo $POD_NAME; cat >&2; exit 3"],
                &AttachParams::default().stdin(true).stderr(true),
            )
            .await
            .expect("exec");
        let mut stdin = p.stdin().expect("stdin");
        let mut stdout = p.stdout().expect("stdout");
        let mut stderr = p.stderr().expect("stderr");
        let status = p.take_status().expect("status");
        stdin.write_all(b"to stderr\n").await.expect("stdin");
        // End of input (v5 tells the server with a close frame for channel 0).
        stdin.shutdown().await.expect("close stdin");
        let (mut out, mut err) = (String::new(), String::new());
        let (a, b) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        a.expect("stdout");
        b.expect("stderr");
        assert_eq!((out.as_str(), err.as_str()), ("tools-0\n", "to stderr\n"));
        let status = status.await.expect("a Status");
        assert_eq!(status.status.as_deref(), Some("Failure"));
        assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
        let causes = status.details.and_then(|d| d.causes).unwrap_or_default();
        assert_eq!(causes[0].reason.as_deref(), Some("ExitCode"));
        assert_eq!(causes[0].message.as_deref(), Some("3"));
        p.join().await.expect("exec ends");

        let mut p = pods
            .exec("tools-0", ["true"], &AttachParams::default())
            .await
            .expect("exec true");
        let status = p.take_status().expect("status").await.expect("a Status");
        assert_eq!(status.status.as_deref(), Some("Success"));

        // Errors are API errors, before any upgrade.
        let err = pods
            .exec(
                "tools-0",
                ["true"],
                &AttachParams::default().container("nope"),
            )
            .await
            .err()
            .expect("unknown container");
        assert!(
            err.to_string()
                .contains("container nope is not valid for pod tools-0"),
            "{err}"
        );
        let err = pods
            .exec("ghost-0", ["true"], &AttachParams::default())
            .await
            .err()
            .expect("unknown pod");
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 404),
            "{err}"
        );

        // portforward: two ports on one connection; 6380 leads nowhere.
        let mut pf = pods
            .portforward("db-0", &[5432])
            .await
            .expect("portforward db");
        let stream = pf.take_stream(5432).expect("stream 5432");
        let answer = postgres_answers(stream).await;
        assert!(answer.ends_with(" via forward"), "{answer}");

        let mut pf = pods
            .portforward("redis-0", &[6379, 6380])
            .await
            .expect("portforward redis");
        let redis = pf.take_stream(6379).expect("stream 6379");
        let broken = pf.take_error(6380).expect("error 6380");
        assert!(redis_pings(redis).await.ends_with("+PONG\r\n"));
        let message = tokio::time::timeout(Duration::from_secs(10), broken)
            .await
            .expect("the error arrives")
            .expect("an error message");
        assert!(
            message.starts_with("error forwarding port 6380 to pod redis-0"),
            "{message}"
        );
    });
}
