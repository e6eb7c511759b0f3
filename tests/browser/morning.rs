//! An agent's morning in the browser (docs/reference.md#who-acts-next, #agent-console): forty
//! tickets waiting, three worked to done by keyboard and mouse, a customer answering meanwhile
//! and the queue showing it without a reload; a refusal with its reason reaching the customer;
//! a note that cannot be mailed. axe-core checks every page on the way.

use crate::axe::assert_accessible;
use crate::helpers::{self, TestApp};
use crate::support::{Page, Window, in_browser};
use serde_json::json;
use std::time::Duration;

const CONSOLE_WINDOW: Window = Window {
    width: 1280,
    height: 900,
    phone: false,
};

/// Ctrl (held) + Enter, as WebDriver types them in one go.
const CTRL_ENTER: &str = "\u{E009}\u{E007}";

async fn seed_forty(app: &TestApp) -> Vec<String> {
    let mut refs = vec![];
    for n in 1..=40 {
        let ticket = app
            .create_ticket(json!({
                "kind": "general",
                "requester": format!("customer{n}@example.test"),
                "subject": format!("Question number {n} about my invoices"),
                "body": format!("Hello, this is question {n}."),
            }))
            .await;
        refs.push(helpers::reference(&ticket));
    }
    refs
}

async fn sign_in(page: &Page, app: &TestApp) {
    page.open("/agent").await;
    page.wait_for_path("/agent/login").await;
    page.type_into("#email", "admin@localhost").await;
    page.type_into("#password", &app.admin_password).await;
    page.submit_with("form[action='/agent/login'] button[type=submit]")
        .await;
    page.wait_for_path("/agent").await;
}

/// Types into a text area and sends its form with Ctrl+Enter, waiting for the next page.
async fn send_with_keyboard(page: &Page, css: &str, text: &str) {
    let old_body = page.element("body").await;
    let field = page.element(css).await;
    field.click().await.expect("focus");
    field.send_keys(text).await.expect("typing");
    field.send_keys(CTRL_ENTER).await.expect("Ctrl+Enter");
    for _ in 0..400 {
        if old_body.tag_name().await.is_err() {
            page.element("body").await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let state = page
        .run_script("return [document.querySelectorAll('form.compose textarea').length, Array.from(document.scripts).map(s => s.src).join(','), document.activeElement && document.activeElement.id, window.__ctrlEnterSeen || 'none'];")
        .await;
    panic!("Ctrl+Enter in `{css}` did not send its form: {state}");
}

fn mailed_templates(app: &TestApp, reference: &str) -> Vec<String> {
    app.outbox_of(reference).into_iter().map(|(t, _, _)| t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_morning_forty_tickets_three_done_and_a_customer_answer_shows_without_reload() {
    in_browser(CONSOLE_WINDOW, |app, page| async move {
        let refs = seed_forty(&app).await;
        let (a, b, c, waiting) = (refs[0].clone(), refs[1].clone(), refs[2].clone(), refs[9].clone());
        // One ticket of the morning is already on the customer: we asked, they will answer.
        app.act(&waiting, "assign", json!({"agent_email": "admin@localhost"}))
            .await;
        let (status, body) = app
            .post(
                &format!("/api/v1/tickets/{waiting}/replies"),
                &json!({"body": "Which invoice number is it?", "internal": false}),
            )
            .await;
        assert!(status.is_success(), "{body}");
        let waiting_status = app.status_path_of(&waiting).await;
        let c_status = app.status_path_of(&c).await;

        sign_in(&page, &app).await;
        let rows = page.texts("#queue-list tbody tr").await;
        assert_eq!(rows.len(), 40, "every waiting ticket is listed");
        assert!(
            page.text(&format!("tr[data-ref='{waiting}'] .turn")).await == "Customer's turn",
            "replied tickets wait on the customer"
        );
        assert!(page.text("th:last-child").await.contains("Last activity"));
        assert_accessible(&page, "the queue").await;
        page.screenshot("console-morning-queue.png").await;

        // 1. By keyboard: a reply sent with Ctrl+Enter, then resolved.
        page.click_link(&a).await;
        page.wait_for_path(&format!("/agent/tickets/{a}")).await;
        assert_accessible(&page, "the ticket page").await;
        send_with_keyboard(&page, "#reply-body", "Hello, the invoices are back in your dashboard.").await;
        assert_eq!(page.text("p.notice").await, "Your reply is on its way.");
        assert_eq!(page.text(".ticket-head .turn").await, "Customer's turn");
        assert!(mailed_templates(&app, &a).contains(&"agent_reply".to_string()));
        page.type_into("#action-resolve input[name=note]", "Invoices restored")
            .await;
        page.submit_with("#action-resolve button[type=submit]").await;
        assert_eq!(page.text(".ticket-head .state").await, "Resolved");

        // 2. A note by keyboard is only ever a note; then resolved with the mouse.
        page.open(&format!("/agent/tickets/{b}")).await;
        let before = mailed_templates(&app, &b);
        send_with_keyboard(&page, "#note-body", "Checked the billing system: nothing missing.").await;
        assert_eq!(page.text("p.notice").await, "Note added.");
        assert_eq!(mailed_templates(&app, &b), before, "a note is never mailed");
        assert!(page.text("ol.thread li.message.note").await.contains("nothing missing"));
        page.submit_with("#action-resolve button[type=submit]").await;
        assert_eq!(page.text(".ticket-head .state").await, "Resolved");

        // 3. Refused with a reason, after a confirmation page.
        page.open(&format!("/agent/tickets/{c}")).await;
        page.element("#refuse-category")
            .await
            .select_by_value("out_of_scope")
            .await
            .expect("a reason chosen");
        page.type_into("#refuse-reason", "Wants a refund: billing, not support")
            .await;
        page.submit_with("#action-refuse button[type=submit]").await;
        assert!(
            page.text("#customer-words")
                .await
                .contains("not something our support team can do")
        );
        assert_accessible(&page, "the refusal's confirmation").await;
        page.screenshot("console-refuse-confirm.png").await;
        page.submit_with("#confirm-refusal button[type=submit]").await;
        assert_eq!(page.text(".ticket-head .state").await, "Refused");

        // The queue, live: the customer answers while the agent looks at it.
        page.open("/agent").await;
        assert_eq!(
            page.texts("#queue-list tbody tr").await.len(),
            37,
            "three of the forty are done"
        );
        page.run_script("window.stillTheSamePage = 'yes'; return true;").await;
        let (status, _, _) = app
            .form(
                &format!("{waiting_status}/reply"),
                &[("body", "It is invoice 2026-117.")],
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
        let row = format!("tr[data-ref='{waiting}']");
        let mut shown = String::new();
        for _ in 0..200 {
            if page.has(&format!("{row} .badge.new")).await {
                shown = page.text(&row).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            shown.contains("New activity") && shown.contains("Our turn"),
            "the row now: {shown:?}"
        );
        assert_eq!(
            page.run_script("return window.stillTheSamePage || 'reloaded';").await,
            json!("yes"),
            "the queue changed without a reload"
        );
        page.screenshot("console-morning-live.png").await;

        // Bulk: two tickets assigned at once, each through the engine.
        page.click(&format!("#pick-{}", refs[4])).await;
        page.click(&format!("#pick-{}", refs[5])).await;
        page.submit_with("button[name=op][value=assign]").await;
        assert!(page.text("#bulk-results").await.contains("2 done, 0 not done"));
        assert_accessible(&page, "the bulk results").await;

        // The refused customer reads why, by mail and on the status page.
        app.deliver(0).await;
        let words = "This is not something our support team can do for you.";
        assert!(
            app.delivered_mail()
                .iter()
                .any(|m| m.to == "customer3@example.test" && m.body.contains(words)),
            "the refusal mail"
        );
        page.open(&c_status).await;
        assert!(page.text("main").await.contains(words), "the status page says why");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_fits_a_phone_without_sideways_scrolling() {
    in_browser(Window::PHONE, |app, page| async move {
        let refs = seed_forty(&app).await;
        sign_in(&page, &app).await;
        let width = page.page_width().await;
        assert!(
            width <= u64::from(Window::PHONE.width),
            "the queue is {width} px wide on a 390 px phone"
        );
        assert_accessible(&page, "the queue on a phone").await;
        page.screenshot("console-queue-phone.png").await;
        page.open(&format!("/agent/tickets/{}", refs[0])).await;
        let width = page.page_width().await;
        assert!(
            width <= u64::from(Window::PHONE.width),
            "the ticket page is {width} px wide on a phone"
        );
        assert_accessible(&page, "the ticket page on a phone").await;
        page.screenshot("console-ticket-phone.png").await;
    })
    .await;
}
