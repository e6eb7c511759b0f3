use super::AppState;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

/// 200 when the database answers, 503 otherwise (for load balancers and monitoring). With an
/// IMAP mailbox configured, `imap` says how its last fetch went (a refused login, say): the
/// web side stays up, so the status code does not change for it.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let imap = state.desk.settings.imap.as_ref().map(|s| s.mailbox_name());
    let checked = state
        .run(move |conn, _| {
            let (reachable, lease) = crate::services::gauges::health(conn, imap.as_deref());
            let mailbox = imap
                .as_deref()
                .filter(|_| reachable)
                .map(|name| imap_detail(name, lease));
            Ok((reachable, mailbox))
        })
        .await;
    match checked {
        Ok((true, mailbox)) => {
            let mut body = json!({"status": "ok", "database": "reachable"});
            if let Some(detail) = mailbox {
                body["imap"] = detail;
            }
            HttpResponse::Ok().json(body)
        }
        _ => HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable", "database": "unreachable"})),
    }
}

fn imap_detail(mailbox: &str, row: Option<crate::db::imap::LeaseRow>) -> Value {
    let at = |t: Option<chrono::NaiveDateTime>| t.map(crate::services::view::rfc3339);
    match row {
        Some(r) if r.last_error.is_some() => json!({
            "mailbox": mailbox, "status": "error", "error": r.last_error,
            "error_at": at(r.last_error_at), "last_ok_at": at(r.last_ok_at),
        }),
        Some(r) if r.last_ok_at.is_some() => {
            json!({"mailbox": mailbox, "status": "ok", "last_ok_at": at(r.last_ok_at)})
        }
        _ => json!({"mailbox": mailbox, "status": "not fetched yet"}),
    }
}
