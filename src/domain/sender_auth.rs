//! Who really sent a message: the verdict `sender_auth` of docs/reference.md#sender-authentication.
//!
//! The verdict is read from the `Authentication-Results` header (RFC 8601) that the operator's
//! own receiving server added, recognised by its authserv-id, or from the fields a provider's
//! webhook posts (`SPF`, `dkim`). Anyone can write an `Authentication-Results` header into a
//! message, so every header whose authserv-id is not the configured one is ignored, and of the
//! trusted ones only the topmost (the last one added, by our own server) counts. Pure code.

use serde::Serialize;

/// The verdict stored with each inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderAuth {
    /// DMARC passed, or DKIM passed for the `From:` domain.
    Pass,
    /// DMARC failed: the `From:` address is not who sent it.
    Fail,
    /// No trusted result, or one that says neither.
    #[default]
    None,
}

impl SenderAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderAuth::Pass => "pass",
            SenderAuth::Fail => "fail",
            SenderAuth::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<SenderAuth> {
        match text {
            "pass" => Some(SenderAuth::Pass),
            "fail" => Some(SenderAuth::Fail),
            "none" => Some(SenderAuth::None),
            _ => None,
        }
    }
}

/// The verdict and the words it was read from (`sender_auth_detail`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    pub verdict: SenderAuth,
    pub detail: String,
}

impl Verdict {
    fn none(detail: impl Into<String>) -> Verdict {
        Verdict {
            verdict: SenderAuth::None,
            detail: detail.into(),
        }
    }
}

/// What a provider's webhook says about the message (SendGrid's `SPF` and `dkim` fields,
/// Mailgun's `X-Mailgun-Spf` and `X-Mailgun-Dkim-Check-Result`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderAuth {
    pub provider: &'static str,
    pub spf: Option<String>,
    /// SendGrid: `{@example.com : pass, @other.example : fail}`; Mailgun: `Pass` / `Fail`.
    pub dkim: Option<String>,
}

/// Longest header or field value read (a result is a few hundred bytes; the rest is noise).
const MAX_VALUE: usize = 4096;

/// The verdict of a message whose `From:` domain is `from_domain`, given its
/// `Authentication-Results` values (topmost first), the configured authserv-id, and what a
/// provider said. A message a provider posted never passed the operator's own server, so its
/// headers are not believed at all (a sender could have written one with the operator's id):
/// only the provider's fields count.
pub fn verdict(
    results: &[&str],
    authserv_id: Option<&str>,
    from_domain: &str,
    provider: Option<&ProviderAuth>,
) -> Verdict {
    if let Some(p) = provider {
        return from_provider(p, from_domain);
    }
    let Some(id) = authserv_id.map(str::trim).filter(|id| !id.is_empty()) else {
        return Verdict::none("no RECOVERYDESK_AUTHSERV_ID: no Authentication-Results header is trusted");
    };
    let trusted = results
        .iter()
        .map(|v| parse_results(v))
        .find(|r| r.authserv_id.eq_ignore_ascii_case(id));
    let Some(results) = trusted else {
        return Verdict::none(format!("no Authentication-Results header from {id}"));
    };
    from_results(&results, from_domain)
}

/// One `method=result` of a header, with its `ptype.property=value` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    pub method: String,
    pub result: String,
    pub properties: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    pub authserv_id: String,
    pub methods: Vec<MethodResult>,
}

/// Parses an `Authentication-Results` value: comments dropped, `;`-separated parts, the first
/// being the authserv-id (and an optional version). Never fails: what it cannot read is left out.
pub fn parse_results(value: &str) -> Results {
    let value: String = value.chars().take(MAX_VALUE).collect();
    let plain = strip_comments(&value);
    let mut parts = split_outside_quotes(&plain, ';').into_iter();
    let authserv_id = parts
        .next()
        .and_then(|p| p.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let mut methods = vec![];
    for part in parts {
        let mut words = part.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        // `dkim/1=pass`: the method's version goes.
        let method = method.split('/').next().unwrap_or(method).to_ascii_lowercase();
        let properties = words
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| k.contains('.'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('"').to_string()))
            .collect();
        methods.push(MethodResult {
            method,
            result: result.to_ascii_lowercase(),
            properties,
        });
    }
    Results { authserv_id, methods }
}

fn from_results(results: &Results, from_domain: &str) -> Verdict {
    let from_domain = from_domain.to_ascii_lowercase();
    let detail = |what: &str| format!("{}: {what}", results.authserv_id);
    let dmarc = results.methods.iter().find(|m| m.method == "dmarc");
    if let Some(m) = dmarc.filter(|m| m.result == "fail") {
        return Verdict {
            verdict: SenderAuth::Fail,
            detail: detail(&format!("dmarc=fail{}", header_from(m))),
        };
    }
    if let Some(m) = dmarc.filter(|m| m.result == "pass") {
        return Verdict {
            verdict: SenderAuth::Pass,
            detail: detail(&format!("dmarc=pass{}", header_from(m))),
        };
    }
    let dkim_for_from = results
        .methods
        .iter()
        .find(|m| m.method == "dkim" && m.result == "pass" && dkim_domain(m).is_some_and(|d| d == from_domain));
    if dkim_for_from.is_some() {
        return Verdict {
            verdict: SenderAuth::Pass,
            detail: detail(&format!("dkim=pass header.d={from_domain}")),
        };
    }
    let said: Vec<String> = results
        .methods
        .iter()
        .take(8)
        .map(|m| format!("{}={}", m.method, m.result))
        .collect();
    Verdict::none(detail(&if said.is_empty() {
        "no result".to_string()
    } else {
        said.join(" ")
    }))
}

fn header_from(m: &MethodResult) -> String {
    m.properties
        .iter()
        .find(|(k, _)| k == "header.from")
        .map(|(_, v)| format!(" header.from={v}"))
        .unwrap_or_default()
}

/// The signing domain of a DKIM result: `header.d`, else the domain of `header.i`.
fn dkim_domain(m: &MethodResult) -> Option<String> {
    let get = |key: &str| m.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    get("header.d")
        .map(str::to_string)
        .or_else(|| get("header.i").and_then(|i| i.rsplit('@').next()).map(str::to_string))
        .map(|d| d.to_ascii_lowercase())
}

/// A provider's fields: DKIM passing for the `From:` domain is a pass; SPF failing with no
/// passing DKIM signature of the `From:` domain (what DMARC would call a failure) is a fail.
fn from_provider(p: &ProviderAuth, from_domain: &str) -> Verdict {
    let from_domain = from_domain.to_ascii_lowercase();
    let spf = p
        .spf
        .as_deref()
        .map(|s| s.chars().take(64).collect::<String>().trim().to_ascii_lowercase());
    let dkim = p.dkim.as_deref().map(|d| d.chars().take(MAX_VALUE).collect::<String>());
    // SendGrid: "{@a.example : pass, @b.example : fail}"; Mailgun: "Pass" for the message.
    let dkim_results: Vec<(Option<String>, String)> = match &dkim {
        Some(d) if d.contains(':') => d
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(',')
            .filter_map(|pair| pair.split_once(':'))
            .map(|(domain, result)| {
                let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
                (Some(domain), result.trim().to_ascii_lowercase())
            })
            .collect(),
        Some(d) => vec![(None, d.trim().to_ascii_lowercase())],
        None => vec![],
    };
    let dkim_pass = dkim_results
        .iter()
        .any(|(domain, result)| result == "pass" && domain.as_deref().is_none_or(|d| d == from_domain));
    let detail = format!(
        "{}: spf={} dkim={}",
        p.provider,
        spf.as_deref().unwrap_or("-"),
        dkim.as_deref()
            .map(|d| d.trim())
            .filter(|d| !d.is_empty())
            .unwrap_or("-")
    );
    let verdict = if dkim_pass {
        SenderAuth::Pass
    } else if matches!(spf.as_deref(), Some("fail" | "softfail")) {
        SenderAuth::Fail
    } else {
        SenderAuth::None
    };
    Verdict {
        verdict,
        detail: detail.chars().take(300).collect(),
    }
}

/// Drops `( … )` comments (nested, with `\` escapes), outside quoted strings.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = vec![];
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Option<&str> = Some("mx.desk.example");

    #[test]
    fn dmarc_in_our_servers_header_decides() {
        let fail = "mx.desk.example; dkim=none; spf=fail smtp.mailfrom=evil.test; dmarc=fail (p=reject dis=none) header.from=owner.example";
        let v = verdict(&[fail], ID, "owner.example", None);
        assert_eq!(v.verdict, SenderAuth::Fail);
        assert_eq!(v.detail, "mx.desk.example: dmarc=fail header.from=owner.example");
        let pass = "mx.desk.example 1; dmarc=pass header.from=owner.example";
        assert_eq!(verdict(&[pass], ID, "owner.example", None).verdict, SenderAuth::Pass);
    }

    #[test]
    fn another_authserv_id_or_none_configured_changes_nothing() {
        let forged = "mx.desk.example.evil.test; dmarc=pass header.from=owner.example";
        assert_eq!(verdict(&[forged], ID, "owner.example", None).verdict, SenderAuth::None);
        let ours = "mx.desk.example; dmarc=fail";
        assert_eq!(verdict(&[ours], None, "owner.example", None).verdict, SenderAuth::None);
        assert_eq!(verdict(&[], ID, "owner.example", None).verdict, SenderAuth::None);
    }

    #[test]
    fn only_the_topmost_trusted_header_counts() {
        // A sender's own header below ours, with our id, claiming a pass: ours is on top.
        let ours = "MX.desk.example; dmarc=fail header.from=owner.example";
        let theirs = "mx.desk.example; dmarc=pass header.from=owner.example";
        assert_eq!(
            verdict(&[ours, theirs], ID, "owner.example", None).verdict,
            SenderAuth::Fail
        );
    }

    #[test]
    fn dkim_passes_only_for_the_from_domain() {
        let other = "mx.desk.example; dkim=pass header.d=mailer.example header.i=@mailer.example";
        assert_eq!(verdict(&[other], ID, "owner.example", None).verdict, SenderAuth::None);
        let own = "mx.desk.example; dkim=pass (2048-bit key) header.i=@Owner.Example header.s=s1";
        assert_eq!(verdict(&[own], ID, "owner.example", None).verdict, SenderAuth::Pass);
    }

    #[test]
    fn comments_and_quotes_do_not_confuse_the_parser() {
        let tricky =
            "mx.desk.example (comment; dmarc=pass) ; dmarc=fail reason=\"a; dmarc=pass\" header.from=x.example";
        let r = parse_results(tricky);
        assert_eq!(r.authserv_id, "mx.desk.example");
        assert_eq!(r.methods.len(), 1);
        assert_eq!(r.methods[0].result, "fail");
        // Unbalanced, empty, huge: no panic, no verdict.
        for junk in ["", ";;;", "((((", "mx.desk.example; =", &"(".repeat(100_000)] {
            assert_eq!(verdict(&[junk], ID, "x.example", None).verdict, SenderAuth::None);
        }
    }

    #[test]
    fn provider_fields() {
        let p = |spf: &str, dkim: &str| ProviderAuth {
            provider: "sendgrid",
            spf: Some(spf.into()),
            dkim: Some(dkim.into()),
        };
        let v = |p: ProviderAuth| verdict(&[], ID, "owner.example", Some(&p)).verdict;
        assert_eq!(v(p("pass", "{@owner.example : pass}")), SenderAuth::Pass);
        assert_eq!(v(p("fail", "{@owner.example : fail}")), SenderAuth::Fail);
        assert_eq!(v(p("fail", "{@other.example : pass}")), SenderAuth::Fail);
        assert_eq!(v(p("pass", "{@other.example : pass}")), SenderAuth::None);
        assert_eq!(v(p("neutral", "none")), SenderAuth::None);
        // Mailgun: one result for the message.
        let mg = ProviderAuth {
            provider: "mailgun",
            spf: Some("Fail".into()),
            dkim: Some("Pass".into()),
        };
        assert_eq!(v(mg), SenderAuth::Pass);
        // A provider's post: a header claiming our id is not believed, whatever it says.
        let quiet = ProviderAuth {
            provider: "sendgrid",
            spf: None,
            dkim: None,
        };
        let ours = "mx.desk.example; dmarc=pass header.from=owner.example";
        assert_eq!(
            verdict(&[ours], ID, "owner.example", Some(&quiet)).verdict,
            SenderAuth::None
        );
    }
}
