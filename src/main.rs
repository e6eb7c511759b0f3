use clap::Parser;
use recoverydesk::cli::Cli;

fn main() -> std::process::ExitCode {
    // Before anything can create a file: nothing the desk writes is for other users.
    recoverydesk::files::restrict_umask();
    // Usage errors exit 64 (EX_USAGE), as MTAs expect of a mailgate; help and version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage_error = e.use_stderr();
            let _ = e.print();
            return std::process::ExitCode::from(if usage_error { 64 } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    recoverydesk::commands::run(cli)
}
