use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = auditsync::cli::Cli::parse();
    auditsync::logging::init(cli.global.verbose, cli.global.quiet);
    auditsync::error::exit(auditsync::run(cli))
}
