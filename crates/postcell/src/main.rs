//! The `postcell` binary: the command line, the configuration, and the wiring of roles
//! to listeners. Everything else lives in the library crates.

mod admin;
mod cell_config;
mod cli;
mod config;
mod init;
mod lifecycle;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("postcell: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postcell: {e:#}");
            ExitCode::FAILURE
        }
    }
}
