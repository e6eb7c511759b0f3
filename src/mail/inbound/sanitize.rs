//! HTML from mail, made safe to show an agent: an allow-list of harmless tags, no script, no
//! style, no images (trackers), links that open nothing on our origin.

use std::collections::HashSet;
use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "b",
        "blockquote",
        "br",
        "code",
        "div",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "li",
        "ol",
        "p",
        "pre",
        "span",
        "strong",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    ]
    .into_iter()
    .collect();
    let mut builder = ammonia::Builder::default();
    builder
        .tags(tags)
        .clean_content_tags(["script", "style", "title", "head"].into_iter().collect())
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .generic_attributes(HashSet::new())
        .tag_attributes([("a", ["href"].into_iter().collect())].into_iter().collect());
    builder
});

pub fn sanitize_html(html: &str) -> String {
    CLEANER.clean(html).to_string()
}

/// The words of an HTML text with its tags set aside (replaced by nothing, so `pass<b>word</b>`
/// reads `password`) and character references decoded, in one pass: what the secret scan reads
/// besides the markup itself.
///
/// Borrowed when the text has neither `<` nor `&`: then it is its own words, and the caller
/// knows it read them already. The marks are found with `memchr`: `str::find` with a set of
/// characters decodes the text a character at a time (docs/benchmarks.md, "The keyword search
/// on folded text").
pub fn words_of_html(html: &str) -> std::borrow::Cow<'_, str> {
    if memchr::memchr2(b'<', b'&', html.as_bytes()).is_none() {
        return std::borrow::Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    // Both marks are ASCII: a byte position of one is a character boundary.
    while let Some(i) = memchr::memchr2(b'<', b'&', rest.as_bytes()) {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if after.starts_with('<') {
            // A comment hides text until `-->`, a tag until `>`.
            let end = if after.starts_with("<!--") {
                memchr::memmem::find(after.as_bytes(), b"-->").map(|e| e + 3)
            } else {
                memchr::memchr(b'>', after.as_bytes()).map(|e| e + 1)
            };
            match end {
                Some(e) => rest = &after[e..],
                // No closing mark anywhere after: the rest is text (and no later `<` could
                // close either, so the pass stays linear).
                None => {
                    out.push_str(after);
                    rest = "";
                }
            }
        } else {
            let (decoded, used) = character_reference(after);
            out.push_str(&decoded);
            rest = &after[used..];
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// `&amp;`, `&#58;`, `&#x3a;` … at the start of `text` (which starts with `&`).
fn character_reference(text: &str) -> (String, usize) {
    // Only a short look-ahead: a long run of `&` stays linear.
    let Some(semi) = text.bytes().take(12).skip(1).position(|b| b == b';').map(|s| s + 1) else {
        return ("&".into(), 1);
    };
    let name = &text[1..semi];
    let decoded = if let Some(num) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
    } else if let Some(num) = name.strip_prefix('#') {
        num.parse::<u32>().ok().and_then(char::from_u32)
    } else {
        match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "colon" => Some(':'),
            "equals" => Some('='),
            _ => None,
        }
    };
    match decoded {
        Some(c) => (c.to_string(), semi + 1),
        None => ("&".into(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_without_tags_or_references_is_its_own_words_borrowed() {
        assert!(matches!(
            words_of_html("password: hunter2"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(matches!(words_of_html(""), std::borrow::Cow::Borrowed(_)));
        assert!(matches!(words_of_html("a & b"), std::borrow::Cow::Owned(_)));
        // Multi-byte text around the marks stays whole.
        assert_eq!(words_of_html("é<b>日</b>&amp;ü"), "é日&ü");
    }

    #[test]
    fn words_of_html_join_what_tags_split_and_decode_references() {
        assert_eq!(
            words_of_html("<p>pass<b>word</b>&#58; hunter2<!-- x --> &amp; more"),
            "password: hunter2 & more"
        );
        assert_eq!(words_of_html("a < b &unknown; c"), "a < b &unknown; c");
        assert_eq!(words_of_html("x &#x3a; y &"), "x : y &");
    }

    #[test]
    fn scripts_styles_trackers_and_handlers_are_removed() {
        let dirty = r#"<style>p{color:red}</style><p onclick="steal()">Hi <b>there</b></p><script>alert(1)</script><img src="https://tracker.example/p.gif"><a href="javascript:alert(1)">x</a><a href="https://ok.example/">ok</a>"#;
        let clean = sanitize_html(dirty);
        assert!(
            !clean.contains("script")
                && !clean.contains("onclick")
                && !clean.contains("tracker")
                && !clean.contains("color:red"),
            "{clean}"
        );
        assert!(!clean.contains("javascript:"), "{clean}");
        assert!(clean.contains("<b>there</b>"));
        assert!(clean.contains(r#"href="https://ok.example/""#) && clean.contains("noopener"));
    }
}
