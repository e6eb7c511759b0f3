//! Building the application: database, migrations, first admin, listener and routes. Tests
//! build it on port 0 and read the port back.

use crate::config::Settings;
use crate::crypto::SecretKey;
use crate::db::{self, Pool};
use crate::services::{Desk, ServiceError, agents};
use crate::web::{self, AppState};
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, middleware};
use std::net::TcpListener;
use std::sync::Arc;

/// Opens the database (creating it), applies migrations, and loads the secret key.
pub fn prepare(settings: &Settings) -> Result<(Pool, Desk), ServiceError> {
    // The mail writers keep a connection each (`services::group_commit`): one on SQLite, four
    // on PostgreSQL.
    let max = if settings.database_url.is_sqlite() {
        8
    } else {
        10 + crate::services::group_commit::POSTGRES_WRITERS as u32
    };
    let pool = db::open_pool(&settings.database_url, max)?;
    let mut conn = pool.get().map_err(|e| db::DbError::Connect(e.to_string()))?;
    let applied = db::run_migrations(&mut conn)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    // The audit chain names tickets by this prefix; events older than the chain get their
    // links now (SQLite cannot compute SHA-256 in a migration).
    db::audit::record_prefix(&mut conn, &settings.ticket_prefix)?;
    let linked = db::audit::backfill(&mut conn)?;
    if linked > 0 {
        tracing::info!(events = linked, "computed the audit chain of earlier events");
    }
    // PostgreSQL's search documents written before the desk split words itself (migration
    // 2026-12-11-000035_search_words) are made again with its rule, once.
    let rebuilt = db::search::rebuild_postgres_words(&mut conn)?;
    if rebuilt > 0 {
        tracing::info!(documents = rebuilt, "made the search documents' words again");
    }
    let secret = match &settings.secret_key {
        Some(text) => SecretKey::parse(text).map_err(ServiceError::Invalid)?,
        None => {
            // Kept in the database so every instance on it shares the key and links and
            // sessions survive restarts.
            let stored = db::settings::get_or_insert(&mut conn, "secret_key", SecretKey::generate_hex)?;
            SecretKey::parse(&stored).map_err(ServiceError::Invalid)?
        }
    };
    Ok((
        pool,
        Desk {
            settings: Arc::new(settings.clone()),
            secret,
            quiet: false,
            metrics: Arc::new(crate::telemetry::Metrics::new()),
        },
    ))
}

pub struct Application {
    port: u16,
    server: Server,
    /// The one-time password of the admin created on this start, if one was.
    pub admin_password: Option<String>,
    sender: Option<crate::mail::outbound::sender::SenderHandle>,
    socket: Option<crate::socket::SocketServer>,
}

impl Application {
    pub fn build(settings: Settings) -> Result<Application, ServiceError> {
        let (pool, desk) = prepare(&settings)?;
        let admin_password = {
            let mut conn = pool.get().map_err(|e| db::DbError::Connect(e.to_string()))?;
            agents::bootstrap_admin(&mut conn, &settings.admin_email, settings.clock.now())?
        };
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| ServiceError::Invalid(format!("cannot listen on {}: {e}", settings.bind)))?;
        let port = listener
            .local_addr()
            .map_err(|e| ServiceError::Invalid(e.to_string()))?
            .port();
        let sender = if settings.run_mail_sender {
            Some(
                crate::mail::outbound::sender::spawn_background(pool.clone(), desk.clone())
                    .map_err(ServiceError::Invalid)?,
            )
        } else {
            None
        };
        spawn_hourly_purge(pool.clone(), settings.auth_log_retention_days);
        if let Some(imap) = settings.imap.clone() {
            spawn_imap_fetcher(pool.clone(), desk.clone(), imap);
        }
        // The writers of received mail (group commit), fed by the webhook and the socket.
        let writer = crate::services::group_commit::start(pool.clone(), &settings.database_url, desk.clone())
            .map_err(|e| ServiceError::Invalid(format!("cannot start the mail writer: {e}")))?;
        let socket = settings.socket.as_ref().and_then(|path| {
            match crate::socket::listen(path, writer.clone(), desk.clone()) {
                Ok(server) => {
                    tracing::info!(socket = %path.display(), "taking mail from mailgate on the local socket");
                    Some(server)
                }
                Err(reason) => {
                    tracing::warn!(%reason, "not taking mail on the local socket: each mailgate writes to the database itself");
                    None
                }
            }
        });
        let state = AppState { pool, desk, writer };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(actix_web::web::Data::new(state.clone()))
                .wrap(web::security::security_headers())
                .wrap(middleware::from_fn(crate::telemetry::access::access_log))
                .configure(web::configure)
                .route("/static/css/site.css", actix_web::web::get().to(stylesheet))
                .route("/static/css/console.css", actix_web::web::get().to(console_stylesheet))
                .route("/static/js/queue.js", actix_web::web::get().to(queue_script))
                .route("/static/js/ticket.js", actix_web::web::get().to(ticket_script))
                .default_service(actix_web::web::to(web::portal::default_not_found))
        })
        .listen(listener)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?
        .run();
        Ok(Application {
            port,
            server,
            admin_password,
            sender,
            socket,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The local socket `mailgate` hands mail to, when this desk listens on one.
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        self.socket.as_ref().map(|s| s.path())
    }

    /// Serves until SIGTERM or SIGINT; then lets the mail sender finish the delivery it is
    /// in (the server's own graceful stop has let requests in flight finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(socket) = self.socket {
            // Mailgates already connected get their answer; new ones write directly.
            let _ = actix_web::rt::task::spawn_blocking(move || socket.stop(std::time::Duration::from_secs(30))).await;
        }
        if let Some(sender) = self.sender {
            tracing::info!("stopping: waiting for the mail sender to finish its delivery");
            let _ = actix_web::rt::task::spawn_blocking(move || sender.stop_and_wait()).await;
        }
        served
    }
}

async fn console_stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../static/css/console.css"))
}

/// Fetches the IMAP mailbox (docs/reference.md#imap) on a thread of its own, so a slow
/// mailbox never holds the web server's workers; it ends with the process.
fn spawn_imap_fetcher(pool: Pool, desk: crate::services::Desk, imap: crate::mail::imap::ImapSettings) {
    let started = std::thread::Builder::new().name("imap-fetch".into()).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(crate::services::imap_fetch::run_forever(pool, desk, imap)),
            Err(e) => tracing::error!(error = %e, "the IMAP fetcher could not start"),
        }
    });
    if let Err(e) = started {
        tracing::error!(error = %e, "the IMAP fetcher could not start");
    }
}

/// The console's two small scripts (live queue, Ctrl+Enter): pages work without them.
async fn queue_script() -> HttpResponse {
    script(include_str!("../static/js/queue.js"))
}

async fn ticket_script() -> HttpResponse {
    script(include_str!("../static/js/ticket.js"))
}

fn script(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}

/// Purges expired rows hourly (authentication events past their retention, rate-limit rows
/// past every window that reads them) and folds the queue's count deltas every 2 s. The tasks
/// live on the server's runtime and end with it; outside a runtime they get a thread.
fn spawn_hourly_purge(pool: Pool, retention_days: u32) {
    let auth_log = crate::services::diagnosis::import::purge_periodically(pool.clone(), retention_days);
    let rate_limits = crate::services::housekeeping::purge_rate_limits_periodically(pool.clone());
    let counts = crate::services::housekeeping::fold_counts_periodically(pool);
    let purge = async move {
        futures_util::future::join3(auth_log, rate_limits, counts).await;
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(purge);
        }
        Err(_) => {
            let started = std::thread::Builder::new().name("hourly-purge".into()).spawn(move || {
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime.block_on(purge),
                    Err(e) => tracing::error!(error = %e, "the hourly purge could not start"),
                }
            });
            if let Err(e) = started {
                tracing::error!(error = %e, "the hourly purge could not start");
            }
        }
    }
}

/// The stylesheet is compiled into the binary: one file to deploy.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../static/css/site.css"))
}
