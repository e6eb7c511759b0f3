//! axe-core in the page under test: every rule of WCAG 2 A and AA (and best practices), zero
//! violations expected. axe-core comes from npm (`.ci/run` installs it into
//! ~/.cache/recoverydesk-axe); RECOVERYDESK_AXE_JS names another copy of `axe.min.js`.

use crate::support::Page;
use std::path::PathBuf;

/// Set in CI: a missing axe-core fails the accessibility checks instead of skipping them.
const REQUIRE_AXE: &str = "RECOVERYDESK_REQUIRE_AXE";

fn axe_source() -> Option<String> {
    let path = std::env::var_os("RECOVERYDESK_AXE_JS").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cache/recoverydesk-axe/node_modules/axe-core/axe.min.js"))
    })?;
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            if std::env::var_os(REQUIRE_AXE).is_some() {
                panic!(
                    "{REQUIRE_AXE} is set but axe-core could not be read at {}: {e}",
                    path.display()
                );
            }
            eprintln!(
                "SKIPPED: axe-core is not installed ({}: {e}); the accessibility check did not run",
                path.display()
            );
            None
        }
    }
}

/// Runs axe-core on the page as it is now and fails with every violation found.
pub async fn assert_accessible(page: &Page, what: &str) {
    let Some(source) = axe_source() else {
        return;
    };
    page.run_script(&format!("{source}\n;window.axe = window.axe || axe; return true;"))
        .await;
    let result = page
        .run_async_script(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
               .then(r => done(r.violations.map(v => ({ id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5) }))))
               .catch(e => done([{ id: 'axe-error', help: String(e), nodes: [] }]));",
        )
        .await;
    let violations = result.as_array().cloned().unwrap_or_default();
    assert!(
        violations.is_empty(),
        "axe-core found {} violation(s) on {what}: {}",
        violations.len(),
        serde_json::to_string_pretty(&violations).unwrap_or_default()
    );
}
