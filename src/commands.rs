//! What each command does, with its exit status.

use crate::cli::{AccountsCommand, AgentsCommand, AuditCommand, AuthLogCommand, Cli, Command};
use crate::config::Settings;
use crate::services::{ServiceError, accounts, agents};
use crate::startup::{Application, prepare};
use std::io::{BufRead, BufReader, Read};
use std::process::ExitCode;

pub fn run(cli: Cli) -> ExitCode {
    let is_mailgate = matches!(cli.command, Some(Command::Mailgate));
    let settings = match Settings::from_options(&cli.options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("recoverydesk: {e}");
            // A misconfigured mail alias must defer, not bounce: the MTA retries once it is fixed.
            return ExitCode::from(if is_mailgate { EX_TEMPFAIL } else { 64 });
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => migrate(&settings),
        Command::Mailgate => {
            // Whatever goes wrong inside, the MTA must keep the message and retry.
            return std::panic::catch_unwind(|| mailgate(&settings)).unwrap_or_else(|_| {
                eprintln!("recoverydesk mailgate: internal error; the message was not stored (temporary failure)");
                ExitCode::from(EX_TEMPFAIL)
            });
        }
        Command::ImportMaildir {
            dir,
            send_acknowledgements,
        } => import_maildir(&settings, &dir, send_acknowledgements),
        Command::FetchImap { once } => return fetch_imap(&settings, once),
        Command::Accounts(AccountsCommand::Import { file }) => import_accounts(&settings, &file),
        Command::AuthLog(AuthLogCommand::Import { file }) => import_auth_log(&settings, &file),
        Command::Agents(AgentsCommand::Add {
            email,
            name,
            role,
            password_stdin: _,
        }) => add_agent(&settings, &email, &name, &role),
        Command::Agents(AgentsCommand::Token {
            email,
            name,
            expires_days,
        }) => issue_token(&settings, &email, &name, expires_days.as_deref()),
        Command::Agents(AgentsCommand::Tokens { email }) => list_tokens(&settings, &email),
        Command::Agents(AgentsCommand::RevokeToken { id }) => revoke_token(&settings, id),
        Command::Agents(AgentsCommand::Password {
            email,
            password_stdin: _,
        }) => set_password(&settings, &email),
        Command::Backup { file } => backup(&settings, &file),
        Command::Audit(AuditCommand::Verify { file }) => audit_verify(&settings, file.as_deref()),
        Command::Completions { shell } => completions(shell),
        Command::Man { dir } => man_pages(dir.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("recoverydesk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> Result<ExitCode, ServiceError> {
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let app = Application::build(settings.clone())?;
        if let Some(password) = &app.admin_password {
            // Printed once: it is stored only as an argon2id hash.
            crate::telemetry::logs::announce(&format!(
                "\nCreated the admin agent {}.\nIt must be replaced at the first sign-in, and stops working after {} hours unused.\nOne-time password (shown only now): {password}\n",
                settings.admin_email,
                agents::ONE_TIME_PASSWORD_HOURS
            ));
        }
        crate::telemetry::logs::announce(&format!(
            "recoverydesk is listening on {} (database {}).",
            settings.base_url,
            settings.database_url.redacted()
        ));
        app.run_until_stopped()
            .await
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Ok(ExitCode::SUCCESS)
    })
}

fn migrate(settings: &Settings) -> Result<ExitCode, ServiceError> {
    prepare(settings)?;
    eprintln!("database {} is up to date", settings.database_url.redacted());
    Ok(ExitCode::SUCCESS)
}

fn import_accounts(settings: &Settings, file: &std::path::Path) -> Result<ExitCode, ServiceError> {
    let (pool, desk) = prepare(settings)?;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file).map_err(|e| ServiceError::Invalid(format!("{}: {e}", file.display())))?;
        Box::new(BufReader::new(f))
    };
    let summary = accounts::import(&mut conn, &desk, reader, |line, reason| {
        eprintln!("line {line}: {reason}")
    })?;
    eprintln!(
        "accounts: {} created, {} updated, {} refused{}",
        summary.created,
        summary.updated,
        summary.refused.len(),
        if summary.tickets_refused > 0 {
            format!(
                "; {} open tickets refused because their account is banned",
                summary.tickets_refused
            )
        } else {
            String::new()
        }
    );
    Ok(if summary.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `auth-log import FILE`: streamed, with a progress bar on a terminal (none otherwise).
fn import_auth_log(settings: &Settings, file: &std::path::Path) -> Result<ExitCode, ServiceError> {
    use crate::services::diagnosis::import;
    let (pool, _) = prepare(settings)?;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    let (reader, size): (Box<dyn BufRead>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(BufReader::with_capacity(1 << 16, std::io::stdin())), None)
    } else {
        let f = std::fs::File::open(file).map_err(|e| ServiceError::Invalid(format!("{}: {e}", file.display())))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, f)), size)
    };
    let bar = match size {
        Some(len) => indicatif::ProgressBar::new(len).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes}, {binary_bytes_per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} {bytes} read, {binary_bytes_per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        ),
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let summary = import::import_lines(
        &mut conn,
        settings.auth_log_retention_days,
        reader,
        |line, reason| bar.suspend(|| eprintln!("line {line}: {reason}")),
        |bytes| bar.set_position(bytes),
    );
    bar.finish_and_clear();
    let summary = summary?;
    // The retention applies to what was there before, too.
    let purged = import::purge_expired(&mut conn, settings.auth_log_retention_days, chrono::Utc::now())?;
    println!("{}", summary.line());
    if purged > 0 {
        eprintln!(
            "auth-log: purged {purged} stored events older than {} days",
            settings.auth_log_retention_days
        );
    }
    Ok(if summary.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The first line of standard input (at most 4 KiB read): where passwords come from.
fn password_from_stdin() -> Result<String, ServiceError> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .map_err(|e| ServiceError::Invalid(format!("reading the password from stdin: {e}")))?;
    Ok(input.lines().next().unwrap_or("").to_string())
}

fn add_agent(settings: &Settings, email: &str, name: &str, role: &str) -> Result<ExitCode, ServiceError> {
    let password = password_from_stdin()?;
    let (pool, _) = prepare(settings)?;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    agents::add_agent(&mut conn, email, name, role, &password)?;
    eprintln!("added {role} {email}");
    Ok(ExitCode::SUCCESS)
}

fn set_password(settings: &Settings, email: &str) -> Result<ExitCode, ServiceError> {
    let password = password_from_stdin()?;
    agents::check_new_password(&password)?;
    let (pool, _) = prepare(settings)?;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    agents::set_password(&mut conn, email, &password)?;
    eprintln!("password of {email} changed; their console sessions have ended");
    Ok(ExitCode::SUCCESS)
}

fn issue_token(
    settings: &Settings,
    email: &str,
    name: &str,
    expires_days: Option<&str>,
) -> Result<ExitCode, ServiceError> {
    let request = agents::TokenRequest::parse(name, expires_days)?;
    let (pool, _) = prepare(settings)?;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    let token = agents::issue_named_token(&mut conn, email, &request, settings.clock.now())?;
    // The token alone on stdout, so scripts can capture it; it is not shown again.
    println!("{token}");
    eprintln!("API token created for {email}; store it now, it is kept only as a hash.");
    Ok(ExitCode::SUCCESS)
}

/// One line per token, tab-separated: id, name, created, last used, expires, status.
fn list_tokens(settings: &Settings, email: &str) -> Result<ExitCode, ServiceError> {
    let (pool, _) = prepare(settings)?;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    let tokens = agents::list_tokens(&mut conn, email)?;
    let now = settings.clock.naive_now();
    let when = |t: Option<chrono::NaiveDateTime>, none: &str| {
        t.map(|t| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| none.to_string())
    };
    let mut out = String::from("id\tname\tcreated\tlast_used\texpires\tstatus\n");
    for t in tokens {
        let status = match (t.revoked_at, t.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(until)) if until <= now => "expired",
            _ => "live",
        };
        // The name is the operator's own words; tabs and newlines would break the columns.
        let name: String = t.name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            t.id,
            name,
            when(Some(t.created_at), ""),
            when(t.last_used_at, "never"),
            when(t.expires_at, "never"),
            status
        ));
    }
    write_stdout(out.as_bytes())
}

fn revoke_token(settings: &Settings, id: i64) -> Result<ExitCode, ServiceError> {
    let (pool, _) = prepare(settings)?;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    agents::revoke_token(&mut conn, id, settings.clock.now())?;
    eprintln!("API token {id} revoked; it now answers 401");
    Ok(ExitCode::SUCCESS)
}

/// `backup FILE`: never creates or migrates the database (a backup is taken before upgrades).
fn backup(settings: &Settings, file: &std::path::Path) -> Result<ExitCode, ServiceError> {
    match crate::db::backup::backup(&settings.database_url, file) {
        Ok(summary) => {
            eprintln!(
                "backup of {} written to {} ({} bytes, {} tickets)",
                settings.database_url.redacted(),
                file.display(),
                summary.bytes,
                summary.tickets
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(ServiceError::Invalid(e.to_string())),
    }
}

/// `audit verify [FILE]`: `ok` and the count (0), or the first broken link (1).
fn audit_verify(settings: &Settings, file: Option<&std::path::Path>) -> Result<ExitCode, ServiceError> {
    let outcome = match file {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| ServiceError::Invalid(format!("standard input: {e}")))?;
                text
            } else {
                let bytes =
                    std::fs::read(path).map_err(|e| ServiceError::Invalid(format!("{}: {e}", path.display())))?;
                String::from_utf8_lossy(&bytes).into_owned()
            };
            crate::domain::audit::verify_export(&text)
        }
        None => {
            let (pool, desk) = prepare(settings)?;
            let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
            crate::services::audit::verify_database(&mut conn, &desk)?
        }
    };
    match outcome {
        Ok(n) => {
            println!("ok {n} events checked");
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            println!("{broken}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn completions(shell: clap_complete::Shell) -> Result<ExitCode, ServiceError> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "recoverydesk", &mut out);
    write_stdout(&out)
}

/// The man page is made from the same clap definitions as `--help`, so the two never differ.
fn man_pages(dir: Option<&std::path::Path>) -> Result<ExitCode, ServiceError> {
    use clap::CommandFactory;
    let command = Cli::command();
    if let Some(dir) = dir {
        clap_mangen::generate_to(command, dir)
            .map_err(|e| ServiceError::Invalid(format!("writing man pages to {}: {e}", dir.display())))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .map_err(|e| ServiceError::Invalid(format!("rendering the man page: {e}")))?;
    write_stdout(&out)
}

/// Output piped into `head` closes early: that is not an error worth a message.
fn write_stdout(bytes: &[u8]) -> Result<ExitCode, ServiceError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(ServiceError::Invalid(format!("writing to standard output: {e}"))),
    }
}

/// sysexits(3), the exit statuses MTAs understand.
const EX_DATAERR: u8 = 65;
const EX_TEMPFAIL: u8 = 75;

/// One message from stdin into a ticket. Every failure to store it is a temporary failure, so
/// the MTA keeps the message and retries; only an oversized message is refused for good.
fn mailgate(settings: &Settings) -> ExitCode {
    let limit = settings.max_message_bytes;
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().take(limit.saturating_add(1)).read_to_end(&mut raw) {
        eprintln!("recoverydesk mailgate: reading the message: {e}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    if raw.len() as u64 > limit {
        return too_large(limit);
    }
    // A running desk takes it over its local socket and answers after its durable commit.
    match crate::socket::deliver(settings, &raw) {
        crate::socket::Delivery::NoDesk => {}
        crate::socket::Delivery::Answered { status: 0, text } => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        crate::socket::Delivery::Answered { status: EX_DATAERR, .. } => return too_large(limit),
        crate::socket::Delivery::Answered { text, .. } => {
            eprintln!("recoverydesk mailgate: {text}");
            return ExitCode::from(EX_TEMPFAIL);
        }
        crate::socket::Delivery::InDoubt(reason) => {
            eprintln!("recoverydesk mailgate: {reason}; the message may not be stored (temporary failure)");
            return ExitCode::from(EX_TEMPFAIL);
        }
    }
    let (mut conn, desk) = match crate::mailgate::open_existing(settings) {
        Ok(opened) => opened,
        Err(reason) => {
            eprintln!("recoverydesk mailgate: {reason}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    match crate::services::inbound::ingest(&mut conn, &desk, &raw, "mailgate") {
        Ok(result) => {
            println!("{}", serde_json::to_string(&result).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(crate::services::inbound::IngestError::TooLarge { limit, .. }) => too_large(limit),
        Err(e) => {
            eprintln!("recoverydesk mailgate: {e}");
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}

/// A permanent refusal. The MTA quotes what a pipe command prints in the bounce it sends to
/// the sender, so stdout and stderr say it in plain words; the setting's name goes only to
/// the operator's mail log.
fn too_large(limit: u64) -> ExitCode {
    crate::mailgate::operator_log(&format!(
        "refused a message larger than RECOVERYDESK_MAX_MESSAGE_BYTES ({limit} bytes); the MTA bounces it"
    ));
    eprintln!("{}", crate::mailgate::too_large_for_sender(limit));
    ExitCode::from(EX_DATAERR)
}

fn import_maildir(
    settings: &Settings,
    dir: &std::path::Path,
    send_acknowledgements: bool,
) -> Result<ExitCode, ServiceError> {
    let files =
        crate::mailgate::maildir_files(dir).map_err(|e| ServiceError::Invalid(format!("{}: {e}", dir.display())))?;
    let (pool, mut desk) = prepare(settings)?;
    desk.quiet = !send_acknowledgements;
    let mut conn = pool.get().map_err(|e| crate::db::DbError::Connect(e.to_string()))?;
    let summary = crate::mailgate::import_files(&mut conn, &desk, &files)?;
    println!("{}", summary.line(dir));
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `fetch-imap --once`: one round over the mailbox, one summary line; 75 when the mailbox
/// could not be reached or logged into, or a message failed temporarily. Without `--once` it
/// fetches continuously, as `serve` does.
fn fetch_imap(settings: &Settings, once: bool) -> ExitCode {
    let Some(imap) = settings.imap.clone() else {
        eprintln!("recoverydesk fetch-imap: RECOVERYDESK_IMAP_URL is not set");
        return ExitCode::from(64);
    };
    let (pool, desk) = match prepare(settings) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("recoverydesk fetch-imap: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("recoverydesk fetch-imap: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    if !once {
        runtime.block_on(crate::services::imap_fetch::run_forever(pool, desk, imap));
        return ExitCode::SUCCESS;
    }
    let holder = crate::services::imap_fetch::holder_id();
    match runtime.block_on(crate::services::imap_fetch::fetch_once(&pool, &desk, &imap, &holder)) {
        Ok(summary) => {
            println!("{}", summary.line(&imap.mailbox_name()));
            if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EX_TEMPFAIL)
            }
        }
        Err(e) => {
            eprintln!("recoverydesk fetch-imap: {e}");
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}
