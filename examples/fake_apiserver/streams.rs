//! Streaming pod subresources over upgraded connections. `pods/exec` runs the command as a real
//! local process (in a scratch directory, with the pod's name in its environment), so exit codes
//! and streams are real; `pods/portforward` tunnels to the TCP address in the pod's
//! `opsctl-test/forward` annotation. Both speak WebSocket with the channel protocols of kube-rs
//! and kubectl 1.32 (`v5.channel.k8s.io`, `v4.channel.k8s.io`); port-forward also speaks
//! SPDY/3.1 as kubectl does, plain or tunnelled over WebSocket (spdy.rs).

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::Stdio;

use futures::{SinkExt as _, StreamExt as _};
use hyper::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;

use super::resources::{self, Resource};
use super::{ApiError, Body, Req, State, full, not_served, pods, s, spdy};

/// Channel protocols in the server's order of preference (kube-rs offers v5 then v4,
/// kubectl 1.32's exec offers v5).
const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";
/// KEP-4006: kubectl 1.32's port-forward, SPDY/3.1 frames carried in WebSocket messages.
pub const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
/// v5: `[255, channel]` says the sender will write no more on that channel.
const CLOSE: u8 = 255;

/// The annotation naming where a pod's forwarded ports lead (`HOST:PORT`);
/// `opsctl-test/forward.PORT` overrides it for one port.
pub const FORWARD: &str = "opsctl-test/forward";

/// How the client asked to upgrade the connection.
enum Upgrade {
    /// WebSocket with this subprotocol (the first of the client's that the server speaks).
    WebSocket { key: String, protocol: &'static str },
    /// Plain SPDY/3.1 (`Upgrade: SPDY/3.1`): client-go's fallback when WebSocket fails.
    Spdy,
}

type Ws = WebSocketStream<TokioIo<Upgraded>>;

fn pods_res() -> Result<&'static Resource, ApiError> {
    resources::by_plural("", "v1", "pods").ok_or_else(|| not_served("pods"))
}

fn header<'a>(r: &'a Req, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn upgrade_kind(r: &Req, speaks: &[&'static str]) -> Result<Upgrade, ApiError> {
    let upgrade = header(r, "upgrade");
    if upgrade.eq_ignore_ascii_case("websocket") {
        let key = header(r, "sec-websocket-key").to_string();
        if key.is_empty() {
            return Err(ApiError::bad_request(
                "unable to upgrade: missing Sec-WebSocket-Key",
            ));
        }
        let offered: Vec<&str> = r
            .headers
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let protocol = offered
            .iter()
            .find_map(|o| speaks.iter().find(|p| *p == o))
            .copied()
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to upgrade: unable to match protocol: the client offers {offered:?}, \
                     this server speaks {speaks:?}"
                ))
            })?;
        return Ok(Upgrade::WebSocket { key, protocol });
    }
    if upgrade.to_ascii_lowercase().starts_with("spdy/3.1") {
        return Ok(Upgrade::Spdy);
    }
    Err(ApiError::bad_request(
        "Upgrade request required: this subresource needs a WebSocket (or SPDY/3.1) upgrade",
    ))
}

fn take_upgrade(r: &Req) -> Result<OnUpgrade, ApiError> {
    r.upgrade
        .lock()
        .ok()
        .and_then(|mut u| u.take())
        .ok_or_else(|| ApiError::new(500, "InternalError", "the connection cannot be upgraded"))
}

/// `101 Switching Protocols` with these headers.
fn switching(headers: &[(&str, String)]) -> Result<Response<Body>, ApiError> {
    let mut b = Response::builder().status(101);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(full(""))
        .map_err(|e| ApiError::new(500, "InternalError", format!("upgrade answer: {e}")))
}

fn websocket_switch(key: &str, protocol: &str) -> Result<Response<Body>, ApiError> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    switching(&[
        ("upgrade", "websocket".into()),
        ("connection", "Upgrade".into()),
        ("sec-websocket-accept", accept),
        ("sec-websocket-protocol", protocol.into()),
    ])
}

async fn websocket(on: OnUpgrade) -> Option<Ws> {
    let upgraded = on.await.ok()?;
    Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
}

/// Sends a Close frame and waits (briefly) for the client's, so the client sees a clean close
/// rather than a reset connection.
async fn close(mut ws: Ws) {
    // A normal closure (1000): gorilla/websocket (kubectl) reads only that as end of stream.
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::binary(v)
}

/// Copies `from` into `channel` frames until it ends.
async fn pump(mut from: impl AsyncRead + Unpin, channel: u8, tx: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What `pods/exec` runs.
struct ExecSpec {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

/// `pods/exec`: checks the request as the real API server and kubelet would, answers the
/// WebSocket upgrade and runs the command locally.
pub fn exec(state: &State, r: &Req, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let pods = pods_res()?;
    let pod = state
        .store()
        .get(pods, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(pods, name))?;
    let command: Vec<String> = r
        .query
        .0
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let (stdin, stdout, stderr, tty) = (
        r.query.flag("stdin"),
        r.query.flag("stdout"),
        r.query.flag("stderr"),
        r.query.flag("tty"),
    );
    if !(stdin || stdout || stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let container = pods::container_of(&pod, r.query.get("container"), name)?;
    let phase = s(&pod, "/status/phase");
    if matches!(phase, "Succeeded" | "Failed") {
        return Err(ApiError::bad_request(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    if phase != "Running" || !container_running(&pod, &container) {
        return Err(ApiError::bad_request(format!(
            "container not found (\"{container}\")"
        )));
    }
    if command.is_empty() || command[0].is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let protocol = match upgrade_kind(r, &[V5, V4])? {
        Upgrade::WebSocket { key, protocol } => (key, protocol),
        Upgrade::Spdy => {
            return Err(ApiError::bad_request(
                "the fake API server serves exec over WebSocket only (v5.channel.k8s.io, \
                 v4.channel.k8s.io), not SPDY",
            ));
        }
    };
    let dir = state.scratch.join(ns).join(name).join(&container);
    std::fs::create_dir_all(&dir).map_err(|e| {
        ApiError::new(
            500,
            "InternalError",
            format!("scratch directory {}: {e}", dir.display()),
        )
    })?;
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        env.push(("PATH".into(), path.to_string_lossy().into_owned()));
    }
    // The container's literal env values, as the runtime would set them.
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    let spec_env = containers
        .into_iter()
        .flatten()
        .find(|c| s(c, "/name") == container)
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array);
    for e in spec_env.into_iter().flatten() {
        if let Some(v) = e.get("value").and_then(Value::as_str) {
            env.push((s(e, "/name").to_string(), v.to_string()));
        }
    }
    env.extend([
        ("HOME".to_string(), dir.display().to_string()),
        ("HOSTNAME".to_string(), name.to_string()),
        ("POD_NAME".to_string(), name.to_string()),
        ("POD_NAMESPACE".to_string(), ns.to_string()),
        ("CONTAINER".to_string(), container),
    ]);
    let spec = ExecSpec {
        command,
        stdin,
        stdout,
        stderr,
        tty,
        dir,
        env,
    };
    let on = take_upgrade(r)?;
    let cancel = state.cancel.clone();
    let resp = websocket_switch(&protocol.0, protocol.1)?;
    tokio::spawn(async move {
        if let Some(ws) = websocket(on).await {
            run_exec(ws, spec, cancel).await;
        }
    });
    Ok(resp)
}

/// Whether the kubelet would find the container running: its status says so, or the pod has
/// no container statuses at all (a minimal fixture).
fn container_running(pod: &Value, container: &str) -> bool {
    let Some(statuses) = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
    else {
        return true;
    };
    statuses
        .iter()
        .find(|c| s(c, "/name") == container)
        .is_some_and(|c| c.pointer("/state/running").is_some())
}

async fn run_exec(ws: Ws, spec: ExecSpec, cancel: CancellationToken) {
    let (mut sink, mut incoming) = ws.split();
    let pipe = |wanted: bool| {
        if wanted {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    let spawned = tokio::process::Command::new(&spec.command[0])
        .args(&spec.command[1..])
        .current_dir(&spec.dir)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(pipe(spec.stdin))
        .stdout(pipe(spec.stdout))
        .stderr(pipe(spec.stderr))
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            // What containerd reports for a missing binary, as exit code 126/127 would be
            // reported by a shell: the runtime's message in a Status.
            let status = json!({
                "metadata": {}, "status": "Failure", "reason": "InternalError",
                "message": format!(
                    "Internal error occurred: error executing command in container: failed to \
                     exec in container: OCI runtime exec failed: exec failed: unable to start \
                     container process: exec: \"{}\": {e}",
                    spec.command[0]
                ),
                "code": 500,
            });
            let _ = sink
                .send(frame(STATUS, status.to_string().as_bytes()))
                .await;
            if let Ok(ws) = sink.reunite(incoming) {
                close(ws).await;
            }
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, STDOUT, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        // With a TTY the real runtime merges stderr into the terminal (stdout).
        let channel = if spec.tty { STDOUT } else { STDERR };
        tokio::spawn(pump(err, channel, tx.clone()));
    }
    drop(tx);
    // Stdin is written by its own task, so a child that does not read cannot stall output.
    let mut stdin_tx = child.stdin.take().map(|mut w| {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if w.write_all(&data).await.is_err() {
                    return;
                }
            }
            // Dropping `w` closes the pipe: the child sees end of input.
        });
        tx
    });
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            out = rx.recv() => match out {
                Some(m) => {
                    if sink.send(m).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Binary(b))) => match b.first() {
                    Some(&STDIN) => {
                        if let Some(tx) = &stdin_tx {
                            if tx.send(b[1..].to_vec()).await.is_err() {
                                stdin_tx = None;
                            }
                        }
                    }
                    Some(&CLOSE) if b.get(1) == Some(&STDIN) => stdin_tx = None,
                    // Terminal resizes (channel 4) have no terminal to act on.
                    _ => {}
                },
                Some(Ok(_)) => {}
                // The client went away (or, on v4, closed to signal the end of stdin, after
                // which nothing more can reach it): the child is killed on drop.
                Some(Err(_)) | None => return,
            },
        }
    }
    drop(stdin_tx);
    let exit = tokio::select! {
        _ = cancel.cancelled() => return,
        exit = child.wait() => exit,
    };
    let code = exit
        .ok()
        .and_then(|s| s.code().or_else(|| s.signal().map(|sig| 128 + sig)));
    let status = match code {
        Some(0) => json!({"metadata": {}, "status": "Success"}),
        Some(code) => json!({
            "metadata": {}, "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], \
                 exit code {code}",
                spec.command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        None => json!({
            "metadata": {}, "status": "Failure", "reason": "InternalError",
            "message": "Internal error occurred: error waiting for the command", "code": 500,
        }),
    };
    if sink
        .send(frame(STATUS, status.to_string().as_bytes()))
        .await
        .is_err()
    {
        return;
    }
    if let Ok(ws) = sink.reunite(incoming) {
        close(ws).await;
    }
}

/// Where the pod's `port` leads: `opsctl-test/forward.PORT`, else `opsctl-test/forward`.
pub fn forward_target(pod: &Value, port: u16) -> Option<String> {
    let annotations = pod.pointer("/metadata/annotations")?;
    annotations
        .get(format!("{FORWARD}.{port}"))
        .or_else(|| annotations.get(FORWARD))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Connects to where the pod's `port` leads, or says why not in the kubelet's words.
pub async fn dial(pod: &Value, port: u16) -> Result<TcpStream, String> {
    let name = s(pod, "/metadata/name");
    let uid = s(pod, "/metadata/uid");
    let fail =
        |why: String| format!("error forwarding port {port} to pod {name}, uid {uid}: {why}");
    let target = forward_target(pod, port).ok_or_else(|| {
        fail(format!(
            "failed to connect to localhost:{port} inside the pod: connection refused (the pod \
             has no {FORWARD} annotation for this port)"
        ))
    })?;
    TcpStream::connect(&target)
        .await
        .map_err(|e| fail(format!("dial tcp {target}: {e}")))
}

/// The ports a `pods/portforward` request names (`ports=5432&ports=6379` or `ports=5432,6379`).
fn requested_ports(r: &Req) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for (_, v) in r.query.0.iter().filter(|(k, _)| k == "ports") {
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(ApiError::bad_request(format!("invalid port {p:?}"))),
            }
        }
    }
    Ok(ports)
}

/// `pods/portforward`: a WebSocket channel tunnel (kube-rs), or SPDY/3.1 plain or over
/// WebSocket (kubectl).
pub fn portforward(
    state: &State,
    r: &Req,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let pods = pods_res()?;
    let pod = state
        .store()
        .get(pods, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(pods, name))?;
    if s(&pod, "/status/phase") != "Running" {
        return Err(ApiError::bad_request(format!(
            "unable to forward port because pod is not running. Current status={}",
            s(&pod, "/status/phase")
        )));
    }
    let cancel = state.cancel.clone();
    match upgrade_kind(r, &[V4, SPDY_TUNNEL])? {
        Upgrade::WebSocket { key, protocol } if protocol == V4 => {
            let ports = requested_ports(r)?;
            if ports.is_empty() {
                return Err(ApiError::bad_request(
                    "query parameter \"ports\" is required for a WebSocket port-forward",
                ));
            }
            let on = take_upgrade(r)?;
            let resp = websocket_switch(&key, protocol)?;
            tokio::spawn(async move {
                if let Some(ws) = websocket(on).await {
                    run_forward(ws, pod, ports, cancel).await;
                }
            });
            Ok(resp)
        }
        Upgrade::WebSocket { key, protocol } => {
            let on = take_upgrade(r)?;
            let resp = websocket_switch(&key, protocol)?;
            tokio::spawn(async move {
                if let Some(ws) = websocket(on).await {
                    spdy::serve(spdy::tunnel(ws), pod, cancel).await;
                }
            });
            Ok(resp)
        }
        Upgrade::Spdy => {
            let on = take_upgrade(r)?;
            let resp = switching(&[
                ("connection", "Upgrade".into()),
                ("upgrade", "SPDY/3.1".into()),
                ("x-stream-protocol-version", "portforward.k8s.io".into()),
            ])?;
            tokio::spawn(async move {
                if let Ok(upgraded) = on.await {
                    spdy::serve(TokioIo::new(upgraded), pod, cancel).await;
                }
            });
            Ok(resp)
        }
    }
}

/// The kubelet's WebSocket port-forward: per port a data channel (2i) and an error channel
/// (2i+1), each opened with a frame carrying the port (little-endian); one TCP connection per
/// port, opened at once; the WebSocket closes when every connection has ended.
async fn run_forward(ws: Ws, pod: Value, ports: Vec<u16>, cancel: CancellationToken) {
    let (mut sink, mut incoming) = ws.split();
    for (i, port) in ports.iter().enumerate() {
        let Ok(ch) = u8::try_from(2 * i) else {
            return;
        };
        for channel in [ch, ch + 1] {
            if sink
                .send(frame(channel, &port.to_le_bytes()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let mut writers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        // Two channels per port, so at most 127 ports fit the one-byte channel number.
        let Ok(ch) = u8::try_from(2 * i) else {
            return;
        };
        match dial(&pod, *port).await {
            Ok(tcp) => {
                let (read, write) = tcp.into_split();
                tokio::spawn(pump(read, ch, tx.clone()));
                writers.push(Some(write));
            }
            Err(message) => {
                let _ = sink.send(frame(ch + 1, message.as_bytes())).await;
                writers.push(None);
            }
        }
    }
    drop(tx);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            out = rx.recv() => match out {
                Some(m) => {
                    if sink.send(m).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Binary(b))) if b.len() > 1 => {
                    let ch = usize::from(b[0]);
                    if ch % 2 == 0 {
                        if let Some(Some(w)) = writers.get_mut(ch / 2) {
                            if w.write_all(&b[1..]).await.is_err() {
                                writers[ch / 2] = None;
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    if let Ok(ws) = sink.reunite(incoming) {
        close(ws).await;
    }
}
