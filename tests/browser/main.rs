//! Browser tests: the real application on a random port, driven by headless Chromium through
//! chromedriver (Debian's `chromium` and `chromium-driver`). A person's steps: clicks and typed
//! keys, then what the page shows. Screenshots land in docs/screenshots/ with
//! RECOVERYDESK_UPDATE_SCREENSHOTS=1.

mod axe;
mod console;
mod customer;
mod four_eyes;
#[path = "../api/helpers.rs"]
#[allow(dead_code)] // shared with the API tests, which use more of it
mod helpers;
mod morning;
mod pages;
mod support;

use helpers::account;
use serde_json::json;
use support::{Page, Window, in_browser};

const IP_LOCKOUT_BUTTON: &str = "I tried my allowlisted IPs: open a request";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_centre_opens_the_ip_lockout_answer_and_its_button_leads_to_the_form() {
    in_browser(Window::DESKTOP, |_app, page| async move {
        page.open("/").await;
        assert_eq!(page.text("h1").await, "Can't log in to your account?");
        assert!(
            page.text("#ip-lockout > summary")
                .await
                .contains("IP Access Management")
        );
        assert!(
            !page.is_visible("#ip-lockout > .answer").await,
            "the answer starts closed"
        );

        page.click("#ip-lockout > summary").await;

        assert!(
            page.is_visible("#ip-lockout > .answer").await,
            "clicking the question opens its answer"
        );
        assert!(
            page.text("#ip-lockout > .answer")
                .await
                .contains("We give access to your IP.")
        );
        assert!(
            !page.is_visible("#smtp-535 > .answer").await,
            "the other answers stay closed"
        );
        page.screenshot("help-centre.png").await;

        page.click_link(IP_LOCKOUT_BUTTON).await;

        page.wait_for_path("/help/ip-lockout").await;
        assert_eq!(page.text("h1").await, "Locked out by IP access management?");
        assert_eq!(
            page.value("#current_ip").await,
            "",
            "the locked-out address is the customer's to give"
        );
        assert!(
            page.text("#current_ip-seen")
                .await
                .contains("We see you connecting from 127.0.0.1"),
            "the form offers the address we see"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_centre_fits_a_phone_screen_without_sideways_scrolling() {
    in_browser(Window::PHONE, |_app, page| async move {
        page.open("/").await;
        page.click("#ip-lockout > summary").await;
        assert!(page.is_visible("#ip-lockout > .answer").await);

        let width = page.page_width().await;
        assert!(
            width <= u64::from(Window::PHONE.width),
            "the page is {width} px wide on a 390 px phone"
        );
        page.screenshot("help-centre-phone.png").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ip_lockout_form_shows_errors_beside_the_fields_keeps_what_was_typed_and_then_confirms_the_request() {
    in_browser(Window::DESKTOP, |_app, page| async move {
        page.open("/help/ip-lockout").await;
        page.type_into("#email", "ops.acme.test").await;
        page.click("#tried-yes").await;
        page.type_into("#details", "The login page says our IP is not allowed.")
            .await;

        page.submit_with("form.stack button[type=submit]").await;

        assert_eq!(page.path().await, "/help/ip-lockout", "the form comes back");
        assert_eq!(page.text(".errors-summary h2").await, "Please check these fields");
        assert_eq!(page.texts(".errors-summary li").await.len(), 2);
        assert_field_error(
            &page,
            "email",
            "An email address needs an @ and a domain, like name@example.com.",
        )
        .await;
        assert_field_error(
            &page,
            "tried_from",
            "Tell us where you tried from (which office, network or colleague), so we can move forward.",
        )
        .await;
        assert!(
            !page.has(".has-error > #account").await,
            "a field left empty on purpose is not marked"
        );
        assert_eq!(page.value("#email").await, "ops.acme.test", "the typed address is kept");
        assert!(page.is_checked("#tried-yes").await, "the answer \"yes\" is kept");
        assert_eq!(
            page.value("#details").await,
            "The login page says our IP is not allowed."
        );
        page.screenshot("form-with-errors.png").await;

        page.retype("#email", "ops@acme.test").await;
        page.type_into("#tried_from", "Our London office network").await;
        page.submit_with("form.stack button[type=submit]").await;

        page.wait_for_path("/help/submitted").await;
        assert_eq!(page.text("h1").await, "We received your request");
        let reference = page.text(".success .ref").await;
        assert!(
            reference.starts_with("RD-") && reference.len() > 3,
            "a reference like RD-…, got {reference:?}"
        );
        assert_eq!(page.text(".success strong").await, "ops@acme.test");
        assert!(
            page.text(".success")
                .await
                .contains("We emailed a private link to ops@acme.test")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_takes_the_allowlisted_attempts_and_shows_a_reply_in_the_thread() {
    in_browser(Window::DESKTOP, |app, page| async move {
        app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
        let ticket = app
            .create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test"}))
            .await;
        let status_path = app.status_path_mailed_to("ops@acme.test").await;

        page.open(&status_path).await;
        assert!(page.text("p.muted").await.contains(&helpers::reference(&ticket)));
        assert_eq!(
            page.text(".state-badge").await,
            "Waiting for you to try your allowlisted IPs"
        );
        assert_eq!(
            page.text("#attempts-title").await,
            "Tell us which allowlisted networks you tried"
        );

        page.type_into("#tried_from", "Our London office network and a colleague on the VPN")
            .await;
        page.type_into("#outcome", "Both got \"IP not allowed\" on the login page.")
            .await;
        page.submit_with("form[action$='/allowlisted-attempts'] button[type=submit]")
            .await;

        page.wait_for_path(&status_path).await;
        assert_eq!(
            page.text(".state-badge").await,
            "Waiting for our team to verify ownership"
        );
        assert!(
            page.text(".next-step")
                .await
                .contains("An agent will verify that the account is yours.")
        );
        assert!(
            !page.has("#attempts-title").await,
            "the attempts form is gone once answered"
        );

        let reply = "We can also try from the Paris office tomorrow.";
        page.type_into("#body", reply).await;
        page.submit_with("form[action$='/reply'] button[type=submit]").await;

        page.wait_for_path(&status_path).await;
        let mine = page.texts(".thread .message.from-you").await;
        assert!(
            mine.iter().any(|m| m.starts_with("You ·") && m.contains(reply)),
            "the reply should be in the thread, from \"You\": {mine:?}"
        );
        assert_eq!(page.value("#body").await, "", "the reply box is empty again");
        page.screenshot("status-page.png").await;
    })
    .await;
}

/// Checks that `field` is marked as wrong and that `message` stands in the field's own box.
async fn assert_field_error(page: &Page, field: &str, message: &str) {
    let wrapper = format!(".field.has-error:has(> #{field})");
    assert_eq!(
        page.text(&format!("{wrapper} > .error")).await,
        message,
        "the message beside #{field}"
    );
    let described_by = page
        .element(&format!("#{field}"))
        .await
        .attr("aria-describedby")
        .await
        .expect("attrs");
    assert!(
        described_by.is_some_and(|ids| ids.split(' ').any(|id| id == format!("{field}-error"))),
        "#{field} should point screen readers at its message"
    );
}
