//! `GET /metrics`: Prometheus text exposition of what an operator watches: tickets per kind and
//! state, the outbox per status (held and failed mail need people), quarantined mail.

use super::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use std::fmt::Write;

pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(status) = super::security::metrics_access(&req, &state.desk.settings) {
        let mut refused = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            refused.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""));
        }
        return refused
            .content_type("text/plain; charset=utf-8")
            .body(if status == StatusCode::UNAUTHORIZED {
                "metrics need the bearer token (RECOVERYDESK_METRICS_TOKEN)\n"
            } else {
                "metrics are served to local clients only\n"
            });
    }
    let Ok(gauges) = state.call(|conn, desk| crate::services::gauges::read(conn, desk)).await else {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("# database unavailable\n");
    };
    let crate::services::gauges::Gauges {
        tickets,
        mail,
        quarantined: waiting,
    } = gauges;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP recoverydesk_tickets Tickets by kind and state.\n# TYPE recoverydesk_tickets gauge"
    );
    for (kind, st, n) in tickets {
        let _ = writeln!(out, "recoverydesk_tickets{{kind=\"{kind}\",state=\"{st}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP recoverydesk_outbox_messages Outgoing mail by delivery status.\n# TYPE recoverydesk_outbox_messages gauge"
    );
    for (status, n) in mail {
        let _ = writeln!(out, "recoverydesk_outbox_messages{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP recoverydesk_quarantined_messages Inbound mail waiting in quarantine.\n# TYPE recoverydesk_quarantined_messages gauge"
    );
    let _ = writeln!(out, "recoverydesk_quarantined_messages {waiting}");
    state.desk.metrics.encode_into(&mut out);
    HttpResponse::Ok()
        .content_type(crate::telemetry::metrics::CONTENT_TYPE)
        .body(out)
}
