//! "Did you try to log in from an IP already on your allowlist?": the answer a new ip_lockout
//! request gives, read the same way by the form and the API.

/// The customer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriedAnswer {
    Yes,
    No,
}

impl TriedAnswer {
    /// `yes` or `no`, exactly as the form sends them; anything else is no answer.
    pub fn parse(text: &str) -> Option<TriedAnswer> {
        match text {
            "yes" => Some(TriedAnswer::Yes),
            "no" => Some(TriedAnswer::No),
            _ => None,
        }
    }
}

/// The answer says "yes" but names no place tried from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriedFromMissing;

/// Where the customer tried from, as a new ticket takes it. "No" means not tried yet, whatever
/// else is sent (a stale field must not skip the step); "yes" needs the places, or the agent
/// could not move on; no answer at all (an agent's API call that does not ask) takes
/// `tried_from` as given. Blank text is no text; other text is kept as it was sent.
pub fn tried_from(answer: Option<TriedAnswer>, tried_from: Option<&str>) -> Result<Option<String>, TriedFromMissing> {
    let given = tried_from.filter(|t| !t.trim().is_empty()).map(str::to_string);
    match answer {
        Some(TriedAnswer::No) => Ok(None),
        Some(TriedAnswer::Yes) => given.map(Some).ok_or(TriedFromMissing),
        None => Ok(given),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_drops_the_places_and_yes_needs_them() {
        assert_eq!(tried_from(Some(TriedAnswer::No), Some("office")), Ok(None));
        assert_eq!(
            tried_from(Some(TriedAnswer::Yes), Some(" office ")),
            Ok(Some(" office ".into()))
        );
        assert_eq!(tried_from(Some(TriedAnswer::Yes), Some("  ")), Err(TriedFromMissing));
        assert_eq!(tried_from(Some(TriedAnswer::Yes), None), Err(TriedFromMissing));
        assert_eq!(tried_from(None, Some("office")), Ok(Some("office".into())));
        assert_eq!(tried_from(None, Some(" ")), Ok(None));
    }

    #[test]
    fn only_the_two_words_are_answers() {
        assert_eq!(TriedAnswer::parse("yes"), Some(TriedAnswer::Yes));
        assert_eq!(TriedAnswer::parse("no"), Some(TriedAnswer::No));
        for other in ["", "maybe", "YES", " no", "true"] {
            assert_eq!(TriedAnswer::parse(other), None, "{other:?}");
        }
    }
}
