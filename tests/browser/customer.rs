//! The customer's side in the browser, at desktop and phone widths: every page checked by
//! axe-core, the help centre's choices on a small phone's first screen, labels whose code words
//! never break, the status page after an action, and the screenshots of docs/screenshots.

use crate::axe::assert_no_violations;
use crate::helpers::{self, TestApp, account};
use crate::support::{Page, Window, in_browser};
use serde_json::json;

/// A small phone: the help centre's choices must fit its first screen.
const SMALL_PHONE: Window = Window {
    width: 360,
    height: 640,
    phone: true,
};

/// Every customer form, empty and sent back with errors; the rate-limit page; the confirmation.
async fn the_forms(app: TestApp, page: Page) {
    let wide = page.window().width > 500;
    page.open("/").await;
    assert_no_violations(&page, "the help centre").await;
    page.click("#smtp-535 > summary").await;
    assert_no_violations(&page, "the help centre with an answer open").await;
    for path in [
        "/help/forgot-username",
        "/help/ip-lockout",
        "/help/account-terminated",
        "/help/login",
    ] {
        page.open(path).await;
        assert_no_violations(&page, path).await;
    }
    // Sent back with errors (and the login form's time zone select).
    page.open("/help/login").await;
    page.type_into("#email", "not an address").await;
    page.element("#failed_at_zone")
        .await
        .select_by_value("Europe/Paris")
        .await
        .expect("the zone is chosen");
    page.submit_with("form.stack button[type=submit]").await;
    assert!(page.has(".errors-summary").await);
    assert_no_violations(&page, "the login form with errors").await;
    if !wide {
        page.screenshot("login-form-phone.png").await;
    }

    // A valid request: the confirmation page, from its cookie.
    page.open("/help/ip-lockout").await;
    page.type_into("#email", "ops@acme.test").await;
    page.click("#tried-yes").await;
    page.type_into("#tried_from", "Our London office network").await;
    page.submit_with("form.stack button[type=submit]").await;
    page.wait_for_path("/help/submitted").await;
    assert!(page.text(".success .ref").await.starts_with("RD-"));
    assert_eq!(page.text(".success strong").await, "ops@acme.test");
    assert_no_violations(&page, "the confirmation page").await;
    if wide {
        page.screenshot("request-received.png").await;
    }
    // The same page opened from a crafted link says nothing of anyone.
    page.open("/help/submitted?ref=RD-999&email=victim%40example.com").await;
    page.wait_for_path("/help/submitted").await;

    // The office's other colleagues fill the hour's places; the next form comes back kept.
    for i in 0..4 {
        let email = format!("colleague{i}@acme.test");
        app.form("/help/forgot-username", &[("email", email.as_str())]).await;
    }
    page.open("/help/login").await;
    page.type_into("#email", "carol@acme.test").await;
    page.click("#problem-smtp").await;
    page.type_into("#details", "Our CRM stopped sending at 09:12.").await;
    page.submit_with("form.stack button[type=submit]").await;
    assert!(page.text("#form-notice").await.contains("You can send it again from"));
    assert_eq!(page.value("#details").await, "Our CRM stopped sending at 09:12.");
    assert!(page.is_checked("#problem-smtp").await);
    assert_no_violations(&page, "the rate-limit notice on the login form").await;
    if wide {
        page.screenshot("rate-limited-form.png").await;
    }
}

/// The status page (attempts form, a reply and its notice, folded mail), the email challenge
/// page before and after the answer, and the page for a link that opens nothing.
async fn the_status_pages(app: TestApp, page: Page) {
    let wide = page.window().width > 500;
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let ticket = app
        .create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test",
                              "body": "Since the move the login page says our IP is not allowed."}))
        .await;
    let reference = helpers::reference(&ticket);
    let status_path = app.status_path_mailed_to("ops@acme.test").await;
    page.open(&status_path).await;
    assert_no_violations(&page, "the status page with the attempts form").await;
    page.type_into("#tried_from", "Our London office network").await;
    page.submit_with("form[action$='/allowlisted-attempts'] button[type=submit]")
        .await;
    assert!(page.text(".sent-notice").await.contains("what you tried is recorded"));
    assert_no_violations(&page, "the status page after a report").await;

    app.act(&reference, "start_ownership_verification", json!({})).await;
    app.act(&reference, "send_email_challenge", json!({})).await;
    let challenge = app.latest_challenge_path().await;
    page.open(&challenge).await;
    assert_no_violations(&page, "the email challenge").await;
    page.submit_with("button[value=confirm]").await;
    assert_no_violations(&page, "the answered email challenge").await;

    page.open(&status_path).await;
    assert_eq!(page.text(".state-badge").await, "Confirmation received");
    page.type_into("#body", "Thank you, we are ready when you are.").await;
    page.submit_with("form[action$='/reply'] button[type=submit]").await;
    assert_eq!(
        page.text(".sent-notice").await,
        "Your message was sent. It is at the end of the messages below."
    );
    assert_no_violations(&page, "the status page after a reply").await;
    page.screenshot(if wide {
        "status-page-after-reply.png"
    } else {
        "status-page-phone.png"
    })
    .await;

    // A login request: its long automatic mail is folded under the customer's own words.
    let (_, _, confirmation) = app
        .form(
            "/help/login",
            &[
                ("email", "dev@acme.test"),
                ("problem", "smtp_535"),
                ("smtp_username", "crm-mailer"),
                ("details", "Since Monday our CRM gets 535 for every message."),
            ],
        )
        .await;
    let login_ref = crate::helpers::reference_on_page(&confirmation);
    let login_path = app.status_path_of(&login_ref).await;
    page.open(&login_path).await;
    assert!(page.has("details.folded").await, "the checklist is folded");
    assert_no_violations(&page, "the status page with folded mail").await;
    page.click("details.folded > summary").await;
    assert_no_violations(&page, "the status page with a mail unfolded").await;

    page.open("/t/not-a-link").await;
    assert_no_violations(&page, "the page for an unknown link").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_customer_form_passes_axe_at_desktop_width() {
    in_browser(Window::DESKTOP, the_forms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_customer_form_passes_axe_at_phone_width() {
    in_browser(Window::PHONE, the_forms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_and_challenge_pages_pass_axe_at_desktop_width() {
    in_browser(Window::DESKTOP, the_status_pages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_and_challenge_pages_pass_axe_at_phone_width() {
    in_browser(Window::PHONE, the_status_pages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_centres_choices_fit_the_first_screen_of_a_small_phone() {
    in_browser(SMALL_PHONE, |_app, page| async move {
        page.open("/").await;
        let bottoms = page
            .client()
            .execute(
                "return Array.from(document.querySelectorAll('main > details.path > summary')).map(s => Math.ceil(s.getBoundingClientRect().bottom));",
                vec![],
            )
            .await
            .expect("the choices' positions");
        let bottoms: Vec<u64> = serde_json::from_value(bottoms).expect("numbers");
        assert_eq!(bottoms.len(), 6, "six choices: {bottoms:?}");
        page.screenshot("help-centre-small-phone.png").await;
        let fold = u64::from(SMALL_PHONE.height);
        assert!(
            bottoms.iter().all(|b| *b <= fold),
            "every choice shows on the first {fold} px: {bottoms:?}"
        );
        assert!(page.page_width().await <= u64::from(SMALL_PHONE.width));
        assert_no_violations(&page, "the help centre on a small phone").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_words_in_labels_never_break_on_a_small_phone() {
    in_browser(SMALL_PHONE, |_app, page| async move {
        for path in ["/help/login", "/help/ip-lockout", "/"] {
            page.open(path).await;
            let broken = page
                .client()
                .execute(
                    "return Array.from(document.querySelectorAll('label code, legend code, summary code, .hint code')).filter(c => c.getClientRects().length > 1).map(c => c.textContent);",
                    vec![],
                )
                .await
                .expect("the code words");
            assert_eq!(broken, json!([]), "{path}: code words broken across lines");
            assert!(
                page.page_width().await <= u64::from(SMALL_PHONE.width),
                "{path} scrolls sideways"
            );
        }
        page.open("/help/login").await;
        let codes = page.texts("label[for=problem-api] code").await;
        assert_eq!(codes, vec!["api_user", "api_key"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_core_does_report_a_page_that_breaks_the_rules() {
    in_browser(Window::DESKTOP, |_app, page| async move {
        page.open("/help/login").await;
        // What a careless change would do: a field without its label, an image without words.
        page.client()
            .execute(
                "document.querySelector('label[for=email]').remove(); document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=/static/none.png>'); return true;",
                vec![],
            )
            .await
            .expect("the page is spoiled");
        let Some(found) = crate::axe::violations(&page, "a spoiled login form").await else {
            return;
        };
        let rules: Vec<&str> = found.iter().filter_map(|v| v["id"].as_str()).collect();
        assert!(rules.contains(&"label"), "{rules:?}");
        assert!(rules.contains(&"image-alt"), "{rules:?}");
    })
    .await;
}
