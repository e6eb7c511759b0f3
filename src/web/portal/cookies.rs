//! Short-lived private cookies of the customer pages (encrypted and authenticated with a key
//! derived from the desk's secret): what the confirmation page shows after a form, and the
//! "sent" notice after an action on a status page. Nothing the customer typed travels in a URL.

use super::super::AppState;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use serde::{Serialize, de::DeserializeOwned};

/// The confirmation page's cookie, and how long it opens that page.
pub const SUBMITTED: &str = "rd_submitted";
pub const SUBMITTED_PATH: &str = "/help/submitted";
pub const SUBMITTED_SECONDS: i64 = 15 * 60;
/// The status page's "sent" notice, and how long it waits to be shown.
pub const NOTICE: &str = "rd_notice";
pub const NOTICE_PATH: &str = "/t/";
pub const NOTICE_SECONDS: i64 = 5 * 60;

fn key(state: &AppState) -> Key {
    let derived = crate::crypto::hmac_token(state.desk.secret.bytes(), &["customer-cookie-key"]);
    let mut material = derived.into_bytes();
    material.extend_from_slice(state.desk.secret.bytes());
    Key::derive_from(&material)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed<T> {
    /// Unix seconds when it was made: the cookie's own Max-Age is the browser's to honour.
    at: i64,
    value: T,
}

/// A private cookie holding `value`, opened by [`open`] for `seconds`.
pub fn seal<T: Serialize>(
    state: &AppState,
    name: &'static str,
    path: &'static str,
    seconds: i64,
    value: T,
) -> Cookie<'static> {
    let sealed = Sealed {
        at: chrono::Utc::now().timestamp(),
        value,
    };
    let cookie = Cookie::build(name, serde_json::to_string(&sealed).unwrap_or_default())
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.desk.settings.base_url.starts_with("https://"))
        .max_age(actix_web::cookie::time::Duration::seconds(seconds))
        .finish();
    let mut jar = CookieJar::new();
    jar.private_mut(&key(state)).add(cookie);
    jar.delta().next().cloned().unwrap_or_else(|| Cookie::new(name, ""))
}

/// The value of a cookie made by [`seal`] within the last `seconds`; `None` for a missing,
/// forged, altered, expired or malformed one.
pub fn open<T: DeserializeOwned>(req: &HttpRequest, state: &AppState, name: &'static str, seconds: i64) -> Option<T> {
    let cookie = req.cookie(name)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    let plain = jar.private(&key(state)).get(name)?;
    let sealed: Sealed<T> = serde_json::from_str(plain.value()).ok()?;
    let age = chrono::Utc::now().timestamp() - sealed.at;
    (0..=seconds).contains(&age).then_some(sealed.value)
}

/// A cookie that makes the browser forget `name`.
pub fn removal(name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "")
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    cookie
}
