//! The `opsctl` binary: parse arguments, hand over to the library, exit with its code.

use clap::Parser;

fn main() {
    let cli = match opsctl::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if !e.use_stderr() {
                0 // --help, --version
            } else if opsctl::cli::subcommand_of(std::env::args().skip(1)) == Some("health".into())
            {
                // For `health`, 2 means unhealthy: a cron job must not read a typo as that.
                opsctl::exit_code::HEALTH_COULD_NOT_RUN
            } else {
                opsctl::exit_code::INVALID
            };
            std::process::exit(code);
        }
    };
    let code = opsctl::commands::dispatch(cli.into_invocation());
    std::process::exit(code);
}
