//! Delay server for `scripts/bench.sh`: answers `GET /<anything>` with `200 ok` after a
//! fixed delay, to any number of concurrent connections, with keep-alive.
//!
//!   cargo build --release --example bench_server
//!   target/release/examples/bench_server [--delay-ms 100] [--port 0]
//!
//! Prints `port=<N>` on stdout once it listens (port 0 picks a free one) and serves until
//! killed. It is async (one tokio task per connection, the delay is a timer, not a
//! sleeping thread) so that a hundred or a thousand clients waiting at once cost the
//! server nothing: a thread-per-connection server made the client under test look
//! several times slower than it is.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn usage() -> ! {
    eprintln!("usage: bench_server [--delay-ms N] [--port N]");
    std::process::exit(2);
}

fn main() {
    let mut delay_ms: u64 = 100;
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--delay-ms" => delay_ms = value.parse().unwrap_or_else(|_| usage()),
            "--port" => port = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    // Two worker threads: the benchmark machine has two cores and the client under test
    // needs them more than this server does.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(serve(delay_ms, port));
}

async fn serve(delay_ms: u64, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // A deep accept backlog: 1,000 clients connecting at once must not see SYN drops
    // (a dropped SYN costs a 1 s retransmit and would be blamed on the client).
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind");
    let listener: TcpListener = socket.listen(4096).expect("listen");
    let port = listener.local_addr().expect("local addr").port();
    // Announce readiness only after listen(): the script waits for this line.
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("port={port}\n").as_bytes())
        .await
        .expect("stdout");
    stdout.flush().await.expect("stdout");

    let delay = Duration::from_millis(delay_ms);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            // Out of file descriptors and the like: keep serving the open connections.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| async move {
                tokio::time::sleep(delay).await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
            });
            // Keep-alive is hyper's default for HTTP/1.1.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
