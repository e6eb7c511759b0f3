use recoverydesk::cli::Cli;

fn main() -> std::process::ExitCode {
    // Before anything can create a file: nothing the desk writes is for other users.
    recoverydesk::files::restrict_umask();
    // Usage errors exit 64 (EX_USAGE), as MTAs expect of a mailgate; help and version exit 0.
    let cli = match Cli::try_parse_args(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            let usage_error = e.use_stderr();
            let _ = e.print();
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
