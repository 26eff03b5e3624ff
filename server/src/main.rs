//! `token-manager-server`: see `--help` and `server/README.md`.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use token_manager_server::{Command, Config, Server};

#[tokio::main]
async fn main() -> ExitCode {
    // Accounts may also come from TOKEN_SERVER_DEMO_USERS, which the process list does not show.
    let config =
        match Config::from_args_and_env(std::env::args().skip(1), |name| std::env::var_os(name)) {
            Ok(Command::Run(config)) => *config,
            Ok(Command::Help(text)) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(message) => {
                // clap's message: the error, the usage line, a pointer to --help.
                eprint!("{message}");
                return ExitCode::from(2);
            }
        };
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for this exact line on stdout before they send requests.
    println!("listening on {}", server.url());
    let _ = std::io::stdout().flush();
    match server.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM (what `kill` and process managers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
