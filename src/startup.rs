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
    let max = if settings.database_url.is_sqlite() { 8 } else { 10 };
    let pool = db::open_pool(&settings.database_url, max)?;
    let mut conn = pool.get().map_err(|e| db::DbError::Connect(e.to_string()))?;
    let applied = db::run_migrations(&mut conn)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
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
}

impl Application {
    pub fn build(settings: Settings) -> Result<Application, ServiceError> {
        let (pool, desk) = prepare(&settings)?;
        let admin_password = {
            let mut conn = pool.get().map_err(|e| db::DbError::Connect(e.to_string()))?;
            agents::bootstrap_admin(&mut conn, &settings.admin_email)?
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
        let state = AppState { pool, desk };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(actix_web::web::Data::new(state.clone()))
                .wrap(web::security::security_headers())
                .wrap(middleware::from_fn(crate::telemetry::access::access_log))
                .configure(web::configure)
                .route("/static/css/site.css", actix_web::web::get().to(stylesheet))
                .route("/static/css/console.css", actix_web::web::get().to(console_stylesheet))
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
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT; then lets the mail sender finish the delivery it is
    /// in (the server's own graceful stop has let requests in flight finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
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
