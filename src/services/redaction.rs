//! Secrets are removed before anything is stored: the scanner runs on every customer text.

use crate::domain::redact::{self, SecretKind};

/// Redacts each field, collecting the kinds of secret found across all of them.
#[derive(Debug, Default)]
pub struct Scrubber {
    pub found: Vec<SecretKind>,
}

impl Scrubber {
    pub fn scrub(&mut self, text: &str) -> String {
        // NUL is never meaningful in text, and PostgreSQL refuses it in TEXT: a message carrying
        // one would fail to store on every retry.
        let text: std::borrow::Cow<str> = if text.contains('\0') {
            text.replace('\0', "").into()
        } else {
            text.into()
        };
        let result = redact::redact(&text);
        for kind in result.found {
            if !self.found.contains(&kind) {
                self.found.push(kind);
            }
        }
        result.text
    }

    pub fn scrub_opt(&mut self, text: Option<&str>) -> Option<String> {
        text.map(|t| self.scrub(t))
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.found.iter().map(|k| k.as_str()).collect();
        kinds.sort_unstable();
        kinds
    }
}
