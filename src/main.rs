//! The `opsctl` binary: parse arguments, hand over to the library, exit with its code.

use clap::Parser;

fn main() {
    let cli = opsctl::cli::Cli::parse();
    let code = opsctl::commands::dispatch(cli.into_invocation());
    std::process::exit(code);
}
