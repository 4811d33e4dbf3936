//! `demo_api`: the API of `./demo.sh`, shaped like the seed runbooks' "TenSafe" API.
//!
//! ```text
//! DEMO_DATABASE_URL=postgres://… DEMO_REDIS_URL=redis://… DEMO_ADMIN_TOKEN=… \
//!   demo_api --listen 127.0.0.1:0 [--tls-listen 127.0.0.1:443] [--worker-batch 50] [--init-schema]
//! ```
//!
//! Serves `GET /internal/health`, `/internal/ready` (Postgres and Redis), `/internal/metrics`
//! (Prometheus text: `tg_tinker_requests_total`, `tg_tinker_request_duration_seconds`,
//! `tg_tinker_queue_depth{status}`, `tg_tinker_jobs_{completed,failed}_total`), and with
//! `Authorization: Bearer $DEMO_ADMIN_TOKEN` the admin DLQ endpoints `GET /v1/admin/dlq`,
//! `GET /v1/admin/dlq/stats`. The DLQ is the Redis list
//! `dlq:jobs`; the queue is the Postgres table `jobs` (`--init-schema` creates it).
//! `--tls-listen` serves the same over HTTPS with a self-signed certificate valid 90 days.
//!
//! Prints `tls on https://ADDR` (with `--tls-listen`), then `listening on http://ADDR` once
//! it serves; stops on SIGINT or SIGTERM.

mod app;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: demo_api --listen HOST:PORT [--tls-listen HOST:PORT] [--worker-batch N] \
         [--init-schema]\n  env: DEMO_DATABASE_URL, DEMO_REDIS_URL, DEMO_ADMIN_TOKEN"
    );
    ExitCode::from(2)
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn addr(flag: &str, value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|e| format!("{flag} {value:?}: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut listen = None;
    let mut tls_listen = None;
    let mut worker_batch: i64 = 50;
    let mut init_schema = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--init-schema" {
            init_schema = true;
            continue;
        }
        let Some(value) = args.next() else {
            return usage();
        };
        let parsed = match arg.as_str() {
            "--listen" => addr(&arg, &value).map(|a| listen = Some(a)),
            "--tls-listen" => addr(&arg, &value).map(|a| tls_listen = Some(a)),
            "--worker-batch" => value
                .parse()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .map(|n| worker_batch = n)
                .ok_or_else(|| format!("--worker-batch {value:?}: an integer from 1 to 10000")),
            _ => return usage(),
        };
        if let Err(e) = parsed {
            eprintln!("demo_api: {e}");
            return ExitCode::from(2);
        }
    }
    let Some(listen) = listen else {
        return usage();
    };
    let urls = (
        env("DEMO_DATABASE_URL"),
        env("DEMO_REDIS_URL"),
        env("DEMO_ADMIN_TOKEN"),
    );
    let (Ok(database_url), Ok(redis_url), Ok(admin_token)) = urls else {
        let (a, b, c) = urls;
        for e in [a.err(), b.err(), c.err()].into_iter().flatten() {
            eprintln!("demo_api: {e}");
        }
        return usage();
    };
    if init_schema {
        if let Err(e) = create_schema(&database_url).await {
            eprintln!("demo_api: creating the jobs table: {e}");
            return ExitCode::FAILURE;
        }
    }
    let opts = app::Options {
        listen,
        tls_listen,
        database_url,
        redis_url,
        admin_token,
        worker_batch,
    };
    let running = match app::start(opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo_api: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(tls) = running.tls_addr() {
        println!("tls on https://{tls}");
    }
    println!("listening on {}", running.url());
    // Scripts wait for that line through a pipe; make sure it leaves now.
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    running.stop();
    ExitCode::SUCCESS
}

async fn create_schema(url: &str) -> Result<(), String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
        .batch_execute(app::SCHEMA)
        .await
        .map_err(|e| e.to_string())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
