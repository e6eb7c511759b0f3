//! axe-core, the accessibility engine, run inside the page Chromium shows. Its script comes from
//! npm (`.ci/run` installs it and points RECOVERYDESK_AXE_JS at `axe.min.js`); without it these
//! checks say SKIPPED loudly, unless RECOVERYDESK_REQUIRE_AXE is set (CI), where they fail.

use crate::support::Page;
use std::path::PathBuf;

const AXE: &str = "RECOVERYDESK_AXE_JS";
const REQUIRE_AXE: &str = "RECOVERYDESK_REQUIRE_AXE";

/// Where axe.min.js is: RECOVERYDESK_AXE_JS, else the places `.ci/run` and a developer use.
fn axe_script() -> Option<String> {
    let mut candidates: Vec<PathBuf> = vec![];
    if let Some(path) = std::env::var_os(AXE) {
        candidates.push(path.into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/recoverydesk-axe/node_modules/axe-core/axe.min.js"));
    }
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js"));
    let found = candidates.iter().find_map(|p| std::fs::read_to_string(p).ok());
    if found.is_none() {
        if std::env::var_os(REQUIRE_AXE).is_some() {
            panic!("{REQUIRE_AXE} is set but axe-core was not found (npm install axe-core; set {AXE})");
        }
        eprintln!(
            "SKIPPED: axe-core is not installed (npm install axe-core, or set {AXE}); no accessibility check ran"
        );
    }
    found
}

/// Runs axe-core (WCAG 2.x A and AA, and best practices) on what the page shows now, and fails
/// with every violation, its rule, help text and the elements involved.
pub async fn assert_no_violations(page: &Page, what: &str) {
    let Some(list) = violations(page, what).await else {
        return;
    };
    assert!(
        list.is_empty(),
        "axe-core found {} violation(s) on {what} at {} px:\n{}",
        list.len(),
        page.window().width,
        serde_json::to_string_pretty(&list).unwrap_or_default()
    );
    eprintln!("axe-core: no violation on {what} at {} px", page.window().width);
}

/// axe-core's violations on what the page shows now (`None`: axe-core is not installed).
pub async fn violations(page: &Page, what: &str) -> Option<Vec<serde_json::Value>> {
    let source = axe_script()?;
    let client = page.client();
    client
        .execute(&format!("{source}\nreturn true;"), vec![])
        .await
        .unwrap_or_else(|e| panic!("loading axe-core into {what}: {e}"));
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, {
            runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
            resultTypes: ["violations"]
        }).then(
            r => done(JSON.stringify(r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ") + " :: " + n.failureSummary)
            })))),
            e => done("axe failed: " + e)
        );
    "#;
    let answer = client
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("running axe-core on {what}: {e}"));
    let text = answer.as_str().unwrap_or_default().to_string();
    let violations: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("axe-core on {what}: {text}"));
    Some(violations.as_array().cloned().unwrap_or_default())
}

/// The console's name for the same check.
pub async fn assert_accessible(page: &Page, what: &str) {
    assert_no_violations(page, what).await;
}
