use recoverydesk::cli::Cli;

fn main() -> std::process::ExitCode {
    // Before anything can create a file: nothing the desk writes is for other users.
    recoverydesk::files::restrict_umask();
    // Usage errors exit 64 (EX_USAGE), as MTAs expect of a mailgate; help and version exit 0.
    // `mailgate` with no argument of its own can only have been refused for its environment
    // (an empty path, say): a misconfigured mail alias defers (75), it must not bounce.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mailgate_alone = Cli::is_mailgate_alone(&args);
    let cli = match Cli::try_parse_args(args) {
        Ok(cli) => cli,
        Err(e) if mailgate_alone && e.use_stderr() => {
            eprintln!(
                "recoverydesk mailgate: {} is refused ({}); the message was not stored (temporary failure)",
                Cli::environment_of(&e).unwrap_or_else(|| "a setting".into()),
                e.kind()
            );
            return std::process::ExitCode::from(75);
        }
        Err(e) => {
            let usage_error = e.use_stderr();
            let _ = e.print();
            // clap names the option; the operator may have set its environment variable.
            if let Some(variable) = Cli::environment_of(&e)
                && std::env::var_os(&variable).is_some()
            {
                eprintln!("recoverydesk: the value refused may come from the environment: {variable}");
            }
            return std::process::ExitCode::from(if usage_error { 64 } else { 0 });
        }
    };
    // OpenSSL (libpq's TLS to PostgreSQL) initialised before anything can use it, without its
    // exit handler: with it, `exit` freed OpenSSL's state while a pool thread could still be
    // connecting, and one command in fifteen on PostgreSQL ended in a segmentation fault after
    // its work was done (an exit status the caller, an MTA for `mailgate`, cannot trust).
    // Nothing else links OpenSSL (mail uses rustls), so a desk on SQLite skips it: `mailgate`
    // starts once per message, and its start is 0.1-0.3 ms shorter without it
    // (docs/benchmarks.md).
    if cli.may_use_postgres() {
        openssl_sys::init();
    }
    recoverydesk::telemetry::logs::init(&cli.options.log_format);
    recoverydesk::commands::run(cli)
}
