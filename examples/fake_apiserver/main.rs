//! `fake_apiserver`: a test Kubernetes API server for kubectl and opsctl (see README.md).
//!
//! `fake_apiserver --listen 127.0.0.1:0 --fixture objects.yaml --kubeconfig kubeconfig
//! [--fail METHOD:PATH:STATUS]...` prints `listening on https://ADDR` once it serves.
//! `${NAME}` in the fixture is replaced by the environment variable NAME.

mod server;

use std::io::Write as _;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: fake_apiserver --listen HOST:PORT --fixture FILE --kubeconfig OUT \
         [--fail METHOD:PATH:STATUS]..."
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut listen = None;
    let mut fixture = None;
    let mut kubeconfig = None;
    let mut fail = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else {
            return usage();
        };
        match arg.as_str() {
            "--listen" => listen = Some(value),
            "--fixture" => fixture = Some(value),
            "--kubeconfig" => kubeconfig = Some(value),
            "--fail" => match value.parse::<server::FailRule>() {
                Ok(rule) => fail.push(rule),
                Err(e) => {
                    eprintln!("fake_apiserver: {e}");
                    return ExitCode::from(2);
                }
            },
            _ => return usage(),
        }
    }
    let (Some(listen), Some(fixture), Some(kubeconfig)) = (listen, fixture, kubeconfig) else {
        return usage();
    };
    let listen = match listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("fake_apiserver: --listen {listen:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let fixture_yaml = match std::fs::read_to_string(&fixture) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("fake_apiserver: --fixture {fixture}: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = server::Options {
        listen,
        fixture_yaml,
        kubeconfig: kubeconfig.into(),
        fail,
        // `${NAME}` in the fixture reads the environment.
        vars: std::env::vars().collect(),
    };
    let running = match server::start(opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake_apiserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", running.url());
    // Scripts wait for that line through a pipe; make sure it leaves now.
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    running.stop();
    ExitCode::SUCCESS
}
