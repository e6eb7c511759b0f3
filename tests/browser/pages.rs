//! axe-core on every console page, at desktop and phone widths: the pages an agent's day does
//! not pass through as well (accounts, canned answers, password, API tokens, agents,
//! quarantine, an approval waiting). Each page is also checked to fit a phone without
//! sideways scrolling, and to be the page it claims (its heading), so a page that answered an
//! error would not pass as checked.

use crate::axe::assert_accessible;
use crate::four_eyes::{sign_in, verified_ticket};
use crate::helpers::{TestApp, account};
use crate::support::{Page, Window, in_browser_with};
use reqwest::StatusCode;
use serde_json::json;

/// The desk the pages show: a grant waiting for approval, a banned parent with a sub-user, a
/// canned answer, a reply with a file, another agent.
async fn seed(app: &TestApp) -> String {
    let reference = verified_ticket(app).await;
    let (status, held) = app
        .action(&reference, "grant_ip_access", json!({"ip": "198.51.100.77"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "four eyes holds the grant: {held}");
    let mut parent = account("acc_2001", "parent-co", "boss@parent.test", "banned");
    parent["banned_at"] = json!("2026-01-02T03:04:05Z");
    let mut child = account("acc_2002", "parent-co-eu", "eu@parent.test", "active");
    child["parent_id"] = json!("acc_2001");
    app.import_accounts(&[parent, child]);
    let (status, body) = app
        .post(
            "/api/v1/canned",
            &json!({"title": "Allowlist steps", "body": "Hello {requester}, see {ref}."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/tickets/{reference}/replies"),
            &json!({"body": "The log you asked for.", "internal": false,
                    "attachments": [{"filename": "steps.txt", "content_type": "text/plain",
                                     "content_base64": "c3RlcCBvbmU="}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut conn = app.conn();
    recoverydesk::services::agents::add_agent(&mut conn, "sam@desk.test", "Sam", "agent", "a long password 42")
        .expect("a second agent");
    reference
}

/// Opens `path`, checks its heading, its width and axe-core.
async fn check(page: &Page, path: &str, heading: &str) {
    page.open(path).await;
    let h1 = page.text("h1").await;
    assert!(h1.contains(heading), "{path} shows {h1:?}, not {heading:?}");
    if page.window().phone {
        let width = page.page_width().await;
        assert!(
            width <= u64::from(page.window().width),
            "{path} is {width} px wide on a {} px phone",
            page.window().width
        );
    }
    assert_accessible(page, path).await;
}

async fn every_page(window: Window) {
    in_browser_with(window, &[("--four-eyes", "on")], |app, page| async move {
        page.open("/agent/login").await;
        assert_accessible(&page, "the sign-in page").await;
        let reference = seed(&app).await;
        sign_in(&page, "admin@localhost", &app.admin_password).await;
        assert!(page.has("#approvals").await, "the queue lists the waiting grant");
        assert_accessible(&page, "the queue with a grant waiting").await;
        let ticket = format!("/agent/tickets/{reference}");
        check(&page, &ticket, "Locked out after the move").await;
        assert!(page.has("#approvals").await, "the ticket shows the approval panel");
        assert!(
            page.has("a[href^='/agent/attachments/']").await,
            "the reply's file is listed on the ticket"
        );
        check(&page, "/agent/accounts", "Accounts").await;
        check(&page, "/agent/accounts?q=parent-co", "Accounts").await;
        check(
            &page,
            &format!("/agent/accounts?link={reference}&q=parent-co"),
            "Accounts",
        )
        .await;
        check(&page, "/agent/accounts/acc_2002", "parent-co-eu").await;
        let main = page.text("main").await;
        assert!(
            main.contains("banned via its parent"),
            "the sub-user of a banned parent shows as banned: {main}"
        );
        assert!(
            main.contains("Directory changes by the desk"),
            "the directory changes are on the page, not in its title: {main}"
        );
        check(&page, "/agent/admin/canned", "Canned answers").await;
        page.click("#canned-list details.edit > summary").await;
        assert_accessible(&page, "the canned answers page with an edit form open").await;
        if !page.window().phone {
            page.screenshot("console-canned.png").await;
        }
        check(&page, "/agent/password", "password").await;
        check(&page, "/agent/admin/tokens", "API tokens").await;
        check(&page, "/agent/admin/agents", "Agents").await;
        check(&page, "/agent/quarantine", "Quarantine").await;
        // The refusal's confirmation page and the answer to a page that does not exist.
        page.open(&ticket).await;
        page.type_into("#refuse-reason", "The same request is open as another ticket.")
            .await;
        page.submit_with("form[action$='/actions/refuse'] button[type=submit]")
            .await;
        assert!(page.text("h1").await.contains("Refuse"), "the refusal's confirmation");
        assert_accessible(&page, "the refusal's confirmation").await;
        page.open(&ticket).await;
        page.submit_with("form.erase button[type=submit]").await;
        assert!(page.text("h1").await.contains("Erase"), "the erase confirmation");
        assert_accessible(&page, "the erase confirmation").await;
        page.open("/agent/tickets/RD-999999").await;
        assert_accessible(&page, "the console's not-found page").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_passes_axe_at_desktop_width() {
    every_page(Window::DESKTOP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_passes_axe_and_fits_at_phone_width() {
    every_page(Window::PHONE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_chosen_in_the_reply_form_goes_to_the_customer_and_a_notes_file_does_not() {
    in_browser_with(Window::DESKTOP, &[], |app, page| async move {
        let ticket = app
            .create_ticket(json!({"kind": "general", "requester": "kim@example.test",
                                  "subject": "Invoices missing", "body": "Hello, I need help."}))
            .await;
        let reference = crate::helpers::reference(&ticket);
        let status_path = app.status_path_of(&reference).await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let export = dir.path().join("march-export.csv");
        std::fs::write(&export, "month,total\nmarch,120\n").expect("written");
        let plan = dir.path().join("our-plan.txt");
        std::fs::write(&plan, "only for agents").expect("written");

        sign_in(&page, "admin@localhost", &app.admin_password).await;
        let ticket_path = format!("/agent/tickets/{reference}");
        page.open(&ticket_path).await;
        page.type_into("#reply-body", "Here is the March export.").await;
        page.element("#reply-files")
            .await
            .send_keys(&export.display().to_string())
            .await
            .expect("a file chosen");
        page.submit_with("#reply button[type=submit]").await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Your reply is on its way.");
        assert!(page.has("a[download]").await, "the reply's file is on the ticket");

        page.type_into("#note-body", "The plan, for us.").await;
        page.element("#note-files")
            .await
            .send_keys(&plan.display().to_string())
            .await
            .expect("a file chosen");
        page.submit_with("#note button[type=submit]").await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Note added.");
        let files = page.texts(".thread .attachments a").await;
        assert_eq!(files, ["march-export.csv", "our-plan.txt"]);

        page.open(&status_path).await;
        let thread = page.text("main").await;
        assert!(thread.contains("march-export.csv"), "{thread}");
        assert!(
            !thread.contains("our-plan") && !thread.contains("The plan, for us"),
            "{thread}"
        );
        app.deliver(0).await;
        let mail = app
            .delivered_mail()
            .into_iter()
            .rfind(|m| m.file.ends_with("-agent_reply.eml"))
            .expect("the reply was delivered");
        let raw = String::from_utf8_lossy(&mail.raw).into_owned();
        assert!(raw.contains("march-export.csv") && !raw.contains("our-plan"), "{raw}");
    })
    .await;
}
