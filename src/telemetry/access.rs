//! The access log and the request-latency histogram, in one middleware.
//!
//! Each request gets an id, carried by a `request` span around the handler: every line the
//! services write while serving it (database work in `AppState::run` enters the same span)
//! carries the id, and so does the access line and the `X-Request-Id` answer header, so one
//! grep finds everything a request did. The client address is the one after trusted-proxy
//! resolution (the proxy's own address says nothing), and the token of a status or challenge
//! link never reaches the log: it is the key to a customer's ticket.

use crate::web::AppState;
use crate::web::security::client_ip;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use std::time::Instant;
use tracing::Instrument;

/// Health checks come every few seconds from load balancers: not worth a line each.
const QUIET_PATHS: [&str; 1] = ["/healthz"];

pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = new_request_id();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let client = state
        .as_ref()
        .and_then(|s| client_ip(req.request(), &s.desk.settings.trusted_proxies))
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "-".into());
    let method = req.method().to_string();
    let target = logged_target(req.path(), req.query_string());
    let quiet = QUIET_PATHS.contains(&req.path());
    let span = tracing::info_span!("request", request_id = %request_id);

    let result = next.call(req).instrument(span.clone()).await;

    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(res) => (
            res.status().as_u16(),
            res.request().match_pattern().unwrap_or_else(|| "unmatched".into()),
        ),
        Err(e) => (e.as_response_error().status_code().as_u16(), "unmatched".into()),
    };
    if let Some(state) = &state {
        state.desk.metrics.http_request(&route, elapsed.as_secs_f64());
    }
    if !quiet {
        span.in_scope(|| {
            tracing::info!(
                target: "recoverydesk::access",
                client = %client,
                method = %method,
                path = %target,
                status,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "{client} \"{method} {target}\" {status} {:.3}ms",
                elapsed.as_secs_f64() * 1000.0
            );
        });
    }
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// 16 hex digits: unique enough to find one request in a day of logs.
fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // The id only correlates lines; a clock-based one is good enough when the OS fails us.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        return format!("{:016x}", nanos as u64);
    }
    hex::encode(bytes)
}

/// The path and query as the log writes them: `/t/{token}…` and `/verify/{token}…` lose the
/// token (`/t/[token]/reply`, as `web::security::mask_token_path` writes it) and their query
/// string. No email address reaches the log: the customer pages take no query (a crafted one is
/// written `?[query]`), and elsewhere a query holding an address is written so too.
pub fn logged_target(path: &str, query: &str) -> String {
    let masked = crate::web::security::mask_token_path(path);
    if masked != path || query.is_empty() {
        return masked;
    }
    let customer_page = !(path.starts_with("/agent") || path.starts_with("/api/") || path.starts_with("/inbound/"));
    let holds_address = query.contains('@') || query.to_ascii_lowercase().contains("%40");
    if customer_page || holds_address {
        format!("{masked}?[query]")
    } else {
        format!("{masked}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::logged_target;

    #[test]
    fn tokens_never_reach_the_access_log() {
        for (path, query, logged) in [
            ("/t/abcDEF_123-x", "", "/t/[token]"),
            ("/t/abcDEF_123-x/reply", "x=1", "/t/[token]/reply"),
            ("/verify/abc", "answer=confirm", "/verify/[token]"),
            ("/VERIFY/abc", "", "/VERIFY/[token]"),
            ("/T/abc", "", "/T/[token]"),
            ("/t/", "", "/t/[token]"),
            ("/help/ip-lockout", "", "/help/ip-lockout"),
            ("/agent", "q=RD-1", "/agent?q=RD-1"),
            ("/agent", "q=victim%40example.com", "/agent?[query]"),
            ("/api/v1/tickets", "q=victim@example.com", "/api/v1/tickets?[query]"),
            ("/api/v1/tickets", "limit=5", "/api/v1/tickets?limit=5"),
            ("/help/submitted", "ref=RD-999&email=victim", "/help/submitted?[query]"),
            ("/", "utm=x", "/?[query]"),
            ("/tickets/t/abc", "", "/tickets/t/abc"),
            ("/", "", "/"),
            ("", "", ""),
        ] {
            assert_eq!(logged_target(path, query), logged, "{path}?{query}");
        }
    }
}
