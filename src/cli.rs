//! The command line: `recoverydesk [OPTIONS] [COMMAND]`. Every option also reads its
//! environment variable (docs/reference.md#configuration), so an operator can configure by either.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "recoverydesk",
    version,
    about = "A support desk for account recovery that enforces the recovery policy in code",
    long_about = "A support desk for account recovery that enforces the recovery policy in code.\n\n\
        With no command it serves the customer pages, the agent console and the JSON API.\n\
        Every command except `mailgate` creates the database if needed and applies pending\n\
        migrations first; `mailgate` never creates one (it exits 75 so the MTA retries).\n\
        Every command checks every setting first and stops with a message naming it."
)]
pub struct Cli {
    #[command(flatten)]
    pub options: GlobalOptions,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses `args` (the program's name first), as [`Parser::try_parse_from`] does.
    ///
    /// `recoverydesk mailgate` with nothing else, as an MTA runs it once per message, is read
    /// without building the other commands: clap copies each of the global options into every
    /// command it builds, about 500 KB of heap and a hundred page faults in every `mailgate`
    /// process (docs/benchmarks.md, "A process per message"). With no argument but the command's
    /// name, what the options hold comes from the environment and the defaults alone, read by
    /// the same definitions either way (a test compares the two).
    pub fn try_parse_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        if Cli::is_mailgate_alone(&args) {
            use clap::FromArgMatches;
            let only_options = GlobalOptions::augment_args(clap::Command::new("recoverydesk").no_binary_name(true));
            let matches = only_options.try_get_matches_from(std::iter::empty::<std::ffi::OsString>())?;
            return Ok(Cli {
                options: GlobalOptions::from_arg_matches(&matches)?,
                command: Some(Command::Mailgate),
            });
        }
        Cli::try_parse_from(args)
    }

    /// Whether `args` are `recoverydesk mailgate` and nothing else (how an MTA runs it).
    pub fn is_mailgate_alone(args: &[std::ffi::OsString]) -> bool {
        matches!(args, [_, command] if command == "mailgate")
    }

    /// The environment variable of the option a parse error is about, when it has one
    /// (`RECOVERYDESK_SOCKET` for `--socket <SOCKET>`).
    pub fn environment_of(error: &clap::Error) -> Option<String> {
        let clap::error::ContextValue::String(invalid) = error.get(clap::error::ContextKind::InvalidArg)? else {
            return None;
        };
        let options = GlobalOptions::augment_args(clap::Command::new("recoverydesk"));
        let arg = options.get_arguments().find(|arg| {
            arg.get_long()
                .is_some_and(|long| invalid.starts_with(&format!("--{long} ")))
        })?;
        Some(arg.get_env()?.to_string_lossy().into_owned())
    }

    /// False only when the database is certainly SQLite: a command then never loads libpq, and
    /// with it OpenSSL. An address that does not parse counts as PostgreSQL (the settings
    /// refuse it later, with a message).
    pub fn may_use_postgres(&self) -> bool {
        !matches!(
            crate::db::DatabaseUrl::parse(&self.options.database_url),
            Ok(crate::db::DatabaseUrl::Sqlite(_))
        )
    }
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Where the data lives: `sqlite://path` (relative) or `sqlite:///abs/path`, or
    /// `postgres://…`/`postgresql://…`. Anything else is refused.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/recoverydesk.db",
        global = true
    )]
    pub database_url: String,
    /// Address and port the web server listens on.
    #[arg(long, env = "RECOVERYDESK_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,
    /// Public URL of the desk, used in mailed links [default: http:// + the bind address].
    #[arg(long, env = "RECOVERYDESK_BASE_URL", global = true)]
    pub base_url: Option<String>,
    /// The address support mail comes from (and customers write to).
    #[arg(
        long,
        env = "RECOVERYDESK_SUPPORT_ADDRESS",
        default_value = "support@localhost",
        global = true
    )]
    pub support_address: String,
    /// Email of the admin agent created on the first start of an empty database.
    #[arg(
        long,
        env = "RECOVERYDESK_ADMIN_EMAIL",
        default_value = "admin@localhost",
        global = true
    )]
    pub admin_email: String,
    /// Bearer token the inbound-mail webhook must present.
    #[arg(long, env = "RECOVERYDESK_INBOUND_TOKEN", hide_env_values = true, global = true)]
    pub inbound_token: Option<String>,
    /// Outgoing SMTP server in lettre's URL form (e.g. `smtp://127.0.0.1:2525`); without it,
    /// mail is written as .eml files to the mail directory.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// Folder for .eml files when no SMTP server is configured.
    #[arg(long, env = "RECOVERYDESK_MAIL_DIR", default_value = "data/mail", global = true)]
    pub mail_dir: PathBuf,
    /// Comma-separated proxy addresses or networks whose `X-Forwarded-For` is believed.
    #[arg(long, env = "RECOVERYDESK_TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,
    /// Prefix of ticket references (`RD-12`) and subject tags (`[RD-12]`).
    #[arg(long, env = "RECOVERYDESK_TICKET_PREFIX", default_value = "RD", global = true)]
    pub ticket_prefix: String,
    /// Largest inbound message accepted, in bytes (25 MiB by default).
    // Numbers are read as text and parsed by `Settings`, not by clap: a bad value must be a
    // settings error (mailgate exit 75, the MTA retries), never a usage error (64, a bounce).
    #[arg(
        long,
        env = "RECOVERYDESK_MAX_MESSAGE_BYTES",
        default_value = "26214400",
        global = true
    )]
    pub max_message_bytes: String,
    /// Most MIME parts a message may have, nested ones included; more → quarantined.
    #[arg(long, env = "RECOVERYDESK_MAX_MIME_PARTS", default_value = "1000", global = true)]
    pub max_mime_parts: String,
    /// Days of authentication logs kept for credential-failure diagnosis.
    #[arg(
        long,
        env = "RECOVERYDESK_AUTH_LOG_RETENTION_DAYS",
        default_value = "30",
        global = true
    )]
    pub auth_log_retention_days: String,
    /// Web form submissions allowed per hour, per client address and per email address.
    #[arg(long, env = "RECOVERYDESK_FORM_RATE_LIMIT", default_value = "5", global = true)]
    pub form_rate_limit: String,
    /// JSON API requests allowed per minute with one token (1 to 100000); beyond, 429.
    #[arg(long, env = "RECOVERYDESK_API_RATE_LIMIT", default_value = "1200", global = true)]
    pub api_rate_limit: String,
    /// Key that signs and encrypts session cookies, status links and Message-IDs (at least 64
    /// bytes, hex or base64). When unset, one is generated and kept in the database.
    #[arg(long, env = "RECOVERYDESK_SECRET_KEY", hide_env_values = true, global = true)]
    pub secret_key: Option<String>,
    /// Bearer token `/metrics` requires; without it, `/metrics` answers loopback clients only.
    #[arg(long, env = "RECOVERYDESK_METRICS_TOKEN", hide_env_values = true, global = true)]
    pub metrics_token: Option<String>,
    /// Log lines on standard error as `text` (for people) or `json` (one object a line).
    #[arg(long, env = "RECOVERYDESK_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// The local socket where `serve` takes messages from `mailgate` [default: the SQLite
    /// file's path + `.sock`; on PostgreSQL `recoverydesk.sock` in $RUNTIME_DIRECTORY or
    /// $XDG_RUNTIME_DIR]. `none` turns it off: every mailgate then writes to the database itself.
    #[arg(long, env = "RECOVERYDESK_SOCKET", global = true)]
    pub socket: Option<PathBuf>,
    /// A PEM file of CA certificates the SMTP relay's certificate may chain to, besides the
    /// system's trust store and the built-in web roots (for a relay with a private CA).
    #[arg(long, env = "SMTP_CA_FILE", global = true)]
    pub smtp_ca_file: Option<PathBuf>,
    /// The authserv-id of the operator's own receiving server: only its
    /// `Authentication-Results` header is believed (docs/mail-setup.md).
    #[arg(long, env = "RECOVERYDESK_AUTHSERV_ID", global = true)]
    pub authserv_id: Option<String>,
    /// Key that Mailgun signs its webhook posts with (`POST /inbound/mailgun`).
    #[arg(
        long,
        env = "RECOVERYDESK_MAILGUN_SIGNING_KEY",
        hide_env_values = true,
        global = true
    )]
    pub mailgun_signing_key: Option<String>,
    /// The mailbox `serve` and `fetch-imap` fetch: `imaps://user@host[:port]/FOLDER`, or
    /// `imap://…` with STARTTLS (plain text only to a loopback address).
    #[arg(long, env = "RECOVERYDESK_IMAP_URL", global = true)]
    pub imap_url: Option<String>,
    /// The mailbox's password (or app password).
    #[arg(long, env = "RECOVERYDESK_IMAP_PASSWORD", hide_env_values = true, global = true)]
    pub imap_password: Option<String>,
    /// A file holding the mailbox's password (first line), instead of RECOVERYDESK_IMAP_PASSWORD.
    #[arg(long, env = "RECOVERYDESK_IMAP_PASSWORD_FILE", global = true)]
    pub imap_password_file: Option<PathBuf>,
    /// Seconds between fetches when the server does not offer IDLE.
    #[arg(long, env = "RECOVERYDESK_IMAP_POLL_SECONDS", default_value = "60", global = true)]
    pub imap_poll_seconds: String,
    /// Folder fetched messages are moved to once stored (created if missing).
    #[arg(
        long,
        env = "RECOVERYDESK_IMAP_DONE_FOLDER",
        default_value = "recoverydesk-processed",
        global = true
    )]
    pub imap_done_folder: String,
    /// `on`: grant_ip_access and reactivate_account wait for a second agent's approval
    /// (four eyes); `off` (the default) applies them at once.
    #[arg(long, env = "RECOVERYDESK_FOUR_EYES", default_value = "off", global = true)]
    pub four_eyes: String,
    /// `on`: a customer's reply or challenge answer on an assigned ticket mails its assignee
    /// (at most one mail per ticket per 15 minutes); `off` (the default) does not.
    #[arg(long, env = "RECOVERYDESK_NOTIFY_ASSIGNEE", default_value = "off", global = true)]
    pub notify_assignee: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the customer pages, the agent console and the JSON API (the default).
    Serve,
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Receive one message on standard input, for an MTA pipe (`"|recoverydesk mailgate"`).
    ///
    /// Prints one JSON line: {"outcome":"created|appended|duplicate|quarantined","ticket":"RD-12"}.
    /// Exit status (sysexits): 0 stored, duplicate or quarantined; 65 rejected for good (too
    /// large); 75 temporary failure (database unavailable, not created or not migrated: the
    /// MTA retries); 64 bad arguments. Never creates a database.
    Mailgate,
    /// Import every message of a maildir (`DIR/new`, `DIR/cur`) or of a plain folder of files.
    ///
    /// Idempotent (duplicates are recognised); prints a summary with counts per outcome. An
    /// archive is imported quietly: no automatic mail unless --send-acknowledgements.
    ImportMaildir {
        /// The maildir (or folder of message files).
        dir: PathBuf,
        /// Answer the imported messages as if they arrived now (acknowledgements, workflow mail).
        #[arg(long)]
        send_acknowledgements: bool,
    },
    /// Fetch the IMAP mailbox of RECOVERYDESK_IMAP_URL once (for cron and tests) and exit.
    ///
    /// Prints one summary line with counts per outcome. Exit status: 0 when every message was
    /// handled; 75 when the mailbox could not be reached or logged into, or a message failed
    /// temporarily (it stays in the mailbox for the next run).
    FetchImap {
        /// Fetch what is there and exit (the only mode: `serve` fetches continuously).
        #[arg(long)]
        once: bool,
    },
    /// Manage the account directory.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Load the SMTP relay's and API gateway's authentication logs (for diagnosing failed
    /// logins).
    #[command(subcommand, name = "auth-log")]
    AuthLog(AuthLogCommand),
    /// Manage agents and their API tokens.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Write a consistent copy of the SQLite database to FILE, safe while `serve` runs.
    ///
    /// FILE must not exist yet; it is created without access for other users. The database is
    /// neither created nor migrated (back up before an upgrade). On PostgreSQL use `pg_dump`
    /// instead: this command says so and exits 1. Restore: stop the desk, put the copy in
    /// place of the database file (removing its -wal and -shm), start the desk.
    Backup {
        /// Where the copy goes (a new file).
        file: PathBuf,
    },
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a completion script for SHELL on standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output, or write one page per command to --dir.
    #[command(hide = true)]
    Man {
        /// Write recoverydesk.1 and a page per command into this folder instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Load accounts from a JSON Lines file (one account per line), upserting by id.
    ///
    /// Each refused line is reported on stderr as `line N: reason`; the other lines are
    /// applied. Exits 1 when any line was refused. A line that would lift a ban is refused.
    Import {
        /// The JSON Lines file (`-` for standard input).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chains of the audit trail: every ticket's in the database (and each
    /// message's text against its content hash, unless it was erased), or an export made with
    /// `GET /api/v1/tickets/{ref}/audit` given as FILE.
    ///
    /// Prints `ok` and the number of events checked (exit 0), or the first broken link as
    /// `ticket RD-n event <id>` with the reason (exit 1).
    Verify {
        /// An exported trail (JSON Lines; `-` for standard input). Without it, the database.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthLogCommand {
    /// Load authentication events from a JSON Lines file, one event per line:
    /// {"at":"2026-11-20T10:00:03Z","channel":"smtp","username":"crm-mailer","account_id":"acc_1001",
    ///  "client_ip":"203.0.113.7","mechanism":"PLAIN","tls":true,"result":"bad_password"}
    ///
    /// The file is streamed (any size). Each refused line is reported on stderr as
    /// `line N: reason`; the other lines are kept. A line with a password, key or secret field
    /// is refused and nothing of it is stored. Events already stored are counted once; events
    /// older than RECOVERYDESK_AUTH_LOG_RETENTION_DAYS are skipped. Prints a summary; exits 1
    /// when any line was refused.
    Import {
        /// The JSON Lines file (`-` for standard input).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Add an agent; the password is read from standard input.
    Add {
        /// The agent's sign-in email.
        #[arg(long)]
        email: String,
        /// The agent's name, as colleagues and the audit trail show it.
        #[arg(long)]
        name: String,
        /// `agent`, or `admin` (may also manage agents and see quarantined mail).
        #[arg(long, default_value = "agent", value_parser = ["agent", "admin"])]
        role: String,
        /// Read the password from standard input (first line); required, so that it never
        /// appears in the shell history or the process list.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Create an API token for an agent. The token is printed once on stdout and stored
    /// only as a hash.
    Token {
        /// The agent's sign-in email.
        #[arg(long)]
        email: String,
        /// A label for the token (what uses it), shown by `agents tokens` and in the console.
        #[arg(long, default_value = "")]
        name: String,
        /// Days until the token stops working (1 to 3650); without it, it lasts until revoked.
        #[arg(long)]
        expires_days: Option<String>,
    },
    /// List an agent's API tokens: id, name, created, last used, expiry, revoked. Never the
    /// token itself (only its hash is kept).
    Tokens {
        /// The agent's sign-in email.
        #[arg(long)]
        email: String,
    },
    /// Revoke an API token by its id (from `agents tokens`): from then on it answers 401.
    RevokeToken {
        /// The token's id.
        #[arg(long)]
        id: i64,
    },
    /// Set an agent's password, read from standard input (first line). Ends the agent's
    /// console sessions, and replaces a one-time password that had to be changed.
    Password {
        /// The agent's sign-in email.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (first line); required.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// A whole number from an option's text, or a message naming the setting: options arrive as
/// text so that a bad value is told in the desk's words, never as clap's usage error.
pub(crate) fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{name} must be a whole number, not {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser;

    fn cli(url: &str) -> Cli {
        Cli::try_parse_from(["recoverydesk", "--database-url", url, "mailgate"]).expect("arguments parse")
    }

    /// `mailgate` alone takes the short way; its options are those the whole command line
    /// gives, here from the defaults and the test process's environment. Anything more takes
    /// the whole parser.
    #[test]
    fn mailgate_alone_reads_the_options_as_the_whole_parser_does() {
        let args = |words: &[&str]| words.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let short = Cli::try_parse_args(args(&["recoverydesk", "mailgate"])).expect("parses");
        let whole = Cli::try_parse_from(["recoverydesk", "mailgate"]).expect("parses");
        assert_eq!(format!("{short:?}"), format!("{whole:?}"));
        let with_option =
            Cli::try_parse_args(args(&["recoverydesk", "mailgate", "--four-eyes", "on"])).expect("parses");
        assert_eq!(with_option.options.four_eyes, "on");
        assert!(Cli::try_parse_args(args(&["recoverydesk", "mailgate", "extra"])).is_err());
        let serve = Cli::try_parse_args(args(&["recoverydesk", "serve"])).expect("parses");
        assert!(matches!(serve.command, Some(super::Command::Serve)));
    }

    /// OpenSSL is skipped only when libpq can never be loaded: a PostgreSQL address, or one
    /// that does not parse, keeps the initialisation that guards its exit.
    #[test]
    fn only_a_sqlite_address_rules_out_postgres() {
        assert!(!cli("sqlite://data/desk.db").may_use_postgres());
        assert!(!cli("sqlite:///var/lib/desk.db").may_use_postgres());
        assert!(cli("postgres://desk@localhost/desk").may_use_postgres());
        assert!(cli("postgresql://desk@localhost/desk").may_use_postgres());
        assert!(cli("mysql://desk@localhost/desk").may_use_postgres());
    }
}
