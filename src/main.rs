//! The `auditsync` binary: parses the command line, sets up logging, and hands over to
//! [`auditsync::run`]; [`auditsync::error::exit`] turns the result into the exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = auditsync::cli::Cli::parse();
    auditsync::logging::init(cli.global.verbose, cli.global.quiet);
    auditsync::error::exit(auditsync::run(cli))
}
