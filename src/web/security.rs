//! Authentication of API callers, and the security headers every response carries.

use super::AppState;
use crate::db::api_requests;
use crate::error::ApiError;
use crate::services::Actor;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::Future;
use std::pin::Pin;

/// The agent behind a valid bearer token. A deactivated agent's tokens stop working at once:
/// the lookup checks the agent on every request.
#[derive(Debug, Clone)]
pub struct ApiAgent {
    pub id: i64,
    pub email: String,
    pub admin: bool,
}

impl ApiAgent {
    pub fn actor(&self) -> Actor {
        Actor::Agent {
            id: self.id,
            email: self.email.clone(),
            admin: self.admin,
        }
    }
}

impl FromRequest for ApiAgent {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(state)) = (token, state) else {
                return Err(ApiError::unauthorized());
            };
            if !crate::crypto::looks_like_token(&token) {
                return Err(ApiError::unauthorized());
            }
            let hash = crate::crypto::sha256_hex(&token);
            let checked = state
                .call(move |conn, desk| crate::services::sign_in::api_caller(conn, desk, &hash))
                .await?;
            let agent = match checked {
                None => return Err(ApiError::unauthorized()),
                Some((_, api_requests::Admission::Limited { retry_after_secs })) => {
                    return Err(ApiError::rate_limited(retry_after_secs));
                }
                Some((agent, api_requests::Admission::Allowed)) => agent,
            };
            Ok(ApiAgent {
                id: agent.id,
                admin: agent.is_admin(),
                email: agent.email,
            })
        })
    }
}

/// An API caller whose token is an admin's. Admin routes take this instead of [`ApiAgent`]:
/// anyone else gets 403 `forbidden` before the handler runs.
#[derive(Debug, Clone)]
pub struct ApiAdmin(pub ApiAgent);

impl FromRequest for ApiAdmin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let agent = ApiAgent::from_request(req, payload);
        Box::pin(async move {
            let agent = agent.await?;
            if agent.admin {
                Ok(ApiAdmin(agent))
            } else {
                Err(ApiError::forbidden("this is for admins"))
            }
        })
    }
}

/// Who may read `/metrics`: with `RECOVERYDESK_METRICS_TOKEN` set, only a request bearing it
/// (else 401); without it, only a loopback client, the client being the address after
/// trusted-proxy resolution (else 403). The gauges count tickets by kind and state, so an
/// anonymous reader could otherwise learn from them whether a form post matched an account.
pub fn metrics_access(
    req: &HttpRequest,
    settings: &crate::config::Settings,
) -> Result<(), actix_web::http::StatusCode> {
    use actix_web::http::StatusCode;
    match &settings.metrics_token {
        Some(expected) => {
            use subtle::ConstantTimeEq;
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .unwrap_or_default();
            // Hashed first, so the comparison takes the same time whatever the lengths.
            let (given, expected) = (crate::crypto::sha256_hex(given), crate::crypto::sha256_hex(expected));
            if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                Ok(())
            } else {
                Err(StatusCode::UNAUTHORIZED)
            }
        }
        None => match client_ip(req, &settings.trusted_proxies) {
            Some(ip) if ip.is_loopback() => Ok(()),
            _ => Err(StatusCode::FORBIDDEN),
        },
    }
}

/// The customer's address: the socket peer, or — only when the peer is a trusted proxy — the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    // Each proxy appends the address it saw: walk back from the nearest until one is not ours.
    Some(forwarded.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer))
}

/// Headers on every response: no framing, no sniffing, no inline script, no referrer leaks of
/// status-page tokens, and no copy in a browser's or proxy's cache. A response that says how it
/// may be cached (the stylesheets) keeps its own `Cache-Control`; everything else — status and
/// challenge pages, console pages, attachment downloads, API answers, form confirmations —
/// gets `no-store`, because any of them may show a private thread or carry a token in its URL.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::PRAGMA, "no-cache"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
}

/// The path as the access log writes it: the token of a status or challenge link is the
/// mailbox owner's key, so `/t/{token}…` and `/verify/{token}…` lose it (`/t/[token]/reply`),
/// and their query string too.
pub fn mask_token_path(path: &str) -> String {
    let mut segments = path.split('/');
    let (Some(""), Some(first), Some(_token)) = (segments.next(), segments.next(), segments.next()) else {
        return path.to_string();
    };
    if !(first.eq_ignore_ascii_case("t") || first.eq_ignore_ascii_case("verify")) {
        return path.to_string();
    }
    let rest: Vec<&str> = segments.collect();
    let mut masked = format!("/{first}/[token]");
    for segment in rest {
        masked.push('/');
        masked.push_str(segment);
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::mask_token_path;

    #[test]
    fn token_paths_are_masked_in_the_access_log() {
        for (path, logged) in [
            ("/t/abcDEF_123-x", "/t/[token]"),
            ("/t/abcDEF_123-x/reply", "/t/[token]/reply"),
            ("/t/abc/allowlisted-attempts", "/t/[token]/allowlisted-attempts"),
            ("/verify/abc", "/verify/[token]"),
            ("/VERIFY/abc", "/VERIFY/[token]"),
            ("/t/", "/t/[token]"),
            ("/help/ip-lockout", "/help/ip-lockout"),
            ("/tickets/t/abc", "/tickets/t/abc"),
            ("/", "/"),
            ("", ""),
        ] {
            assert_eq!(mask_token_path(path), logged, "{path}");
        }
    }
}
