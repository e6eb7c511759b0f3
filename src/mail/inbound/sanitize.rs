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

#[cfg(test)]
mod tests {
    use super::*;

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
