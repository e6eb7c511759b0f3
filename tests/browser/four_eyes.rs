//! Four eyes in the browser: one agent asks for a grant, a second one approves it from the
//! queue and the ticket page (docs/console.md).

use crate::helpers::{self, TestApp, account};
use crate::support::{Page, Window, in_browser_with};
use serde_json::json;

const CONSOLE_WINDOW: Window = Window {
    width: 1280,
    height: 900,
    phone: false,
};
const REQUESTER: &str = "ops@acme.test";
const CUSTOMER_IP: &str = "198.51.100.77";
const SECOND: &str = "second@desk.test";
const SECOND_PASSWORD: &str = "a second long password";

/// An ip_lockout ticket walked to `ownership_verified` through the API.
pub(crate) async fn verified_ticket(app: &TestApp) -> String {
    app.import_accounts(&[account("acc_1001", "acme-mailer", REQUESTER, "active")]);
    let ticket = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": REQUESTER, "subject": "Locked out after the move",
                              "body": "The login page says our IP is not allowed.", "current_ip": CUSTOMER_IP}),
        )
        .await;
    let r = helpers::reference(&ticket);
    helpers::verify_ownership(
        app,
        &r,
        "office VPN",
        json!({"method": "billing_details", "passed": true}),
    )
    .await;
    r
}

pub(crate) async fn sign_in(page: &Page, email: &str, password: &str) {
    page.open("/agent/login").await;
    page.type_into("#email", email).await;
    page.type_into("#password", password).await;
    page.submit_with("form[action='/agent/login'] button[type=submit]")
        .await;
    page.wait_for_path("/agent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_with_four_eyes_on_needs_a_second_agent_in_the_console() {
    in_browser_with(CONSOLE_WINDOW, &[("--four-eyes", "on")], |app, page| async move {
        {
            let mut conn = app.conn();
            recoverydesk::services::agents::add_agent(&mut conn, SECOND, "Sam Second", "agent", SECOND_PASSWORD)
                .expect("the second agent");
        }
        let reference = verified_ticket(&app).await;
        let ticket_path = format!("/agent/tickets/{reference}");

        // The first agent asks for the grant: it is recorded, not applied.
        sign_in(&page, "admin@localhost", &app.admin_password).await;
        page.open(&ticket_path).await;
        page.submit_with("#action-grant_ip_access button[type=submit]").await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(
            page.text("p.notice").await,
            "Recorded: waiting for a second agent's approval (four eyes)."
        );
        assert_eq!(page.text(".ticket-head .state").await, "Ownership verified");
        let panel = page.text("#approvals").await;
        assert!(
            panel.contains("admin@localhost asked for Grant IP access: 198.51.100.77"),
            "the panel says who asked for what: {panel}"
        );
        assert!(panel.contains("Another agent must approve it"), "{panel}");
        assert!(
            !page.has("#approvals button[id^=approve-]").await,
            "no approve button for the requester"
        );
        assert_eq!(
            page.texts("#account ul.plain code").await,
            ["203.0.113.7"],
            "nothing applied yet"
        );

        page.submit_with("nav form[action='/agent/logout'] button").await;
        page.wait_for_path("/agent/login").await;

        // The second agent finds it at the top of the queue and approves it.
        sign_in(&page, SECOND, SECOND_PASSWORD).await;
        assert_eq!(page.text("#approvals-badge").await, "1");
        let waiting = page.text("#approvals").await;
        assert!(
            waiting.contains(&reference)
                && waiting.contains("asked by admin@localhost")
                && waiting.contains("needs you"),
            "{waiting}"
        );
        page.click(&format!("#approvals a[href^='/agent/tickets/{reference}']"))
            .await;
        page.wait_for_path(&ticket_path).await;
        assert!(page.has("#approvals button[id^=approve-]").await);
        page.screenshot("console-approval.png").await;
        page.submit_with("#approvals button[id^=approve-]").await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Approved and applied.");
        assert_eq!(page.text(".ticket-head .state").await, "Resolved");
        assert_eq!(
            page.texts("#account ul.plain code").await,
            ["203.0.113.7", CUSTOMER_IP],
            "the allowlist has the address"
        );
        assert!(!page.has("#approvals").await, "nothing waits any more");
        let audit = page.text("#audit").await;
        assert!(
            audit.contains("approval_requested") && audit.contains("approval_approved"),
            "{audit}"
        );
        assert!(
            page.text("#trail-check").await.contains("the hash chain holds"),
            "verify this trail says the chain holds"
        );
    })
    .await;
}
