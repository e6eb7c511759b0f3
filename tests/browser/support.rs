//! The browser harness: Debian's chromedriver in a process group of its own, one headless
//! Chromium session per test with a fresh profile, and a `Page` with readable steps.
//!
//! `in_browser` runs a scenario against the real app and always closes the WebDriver session,
//! also when the scenario panics or takes too long; chromedriver's whole process group (the
//! browser included) is killed when the guard drops.

use crate::helpers::{Backend, TestApp};
use base64::Engine;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Set (to anything) in CI: a missing chromedriver fails the browser tests instead of skipping them.
const REQUIRE_BROWSER: &str = "RECOVERYDESK_REQUIRE_BROWSER";
/// `1` writes the screenshots to docs/screenshots/; otherwise they are only taken and checked.
const UPDATE_SCREENSHOTS: &str = "RECOVERYDESK_UPDATE_SCREENSHOTS";

/// How long one scenario may take before it fails (and the session is still closed).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);
/// How long any element or page may take to appear.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Full-page screenshots stop at this height.
const MAX_SCREENSHOT_HEIGHT: u64 = 8000;

/// The browser window's size in CSS pixels (the device scale factor is 1). Chromium's windows
/// are at least 500 px wide, so a phone is emulated: a 390 px mobile viewport, with touch and
/// the page's `<meta name="viewport">` honoured.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub width: u32,
    pub height: u32,
    pub phone: bool,
}

impl Window {
    pub const DESKTOP: Window = Window {
        width: 1024,
        height: 768,
        phone: false,
    };
    pub const PHONE: Window = Window {
        width: 390,
        height: 844,
        phone: true,
    };
}

/// Runs `scenario` with the real app (on SQLite) and a page in headless Chromium, or prints
/// `SKIPPED: …` and returns when chromedriver is not installed (see `REQUIRE_BROWSER`).
pub async fn in_browser<F, Fut>(window: Window, scenario: F)
where
    F: FnOnce(TestApp, Page) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    in_browser_with(window, &[], scenario).await
}

/// [`in_browser`] with an app started with these extra command-line settings.
pub async fn in_browser_with<F, Fut>(window: Window, settings: &[(&str, &str)], scenario: F)
where
    F: FnOnce(TestApp, Page) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if !browser_is_installed() {
        return;
    }
    let app = TestApp::spawn_with(Backend::Sqlite, settings)
        .await
        .expect("the SQLite app always starts");
    let driver = ChromeDriver::start();
    let profile = tempfile::tempdir().expect("a temporary browser profile");
    let client = open_session(driver.port, profile.path(), window).await;
    let page = Page {
        client: client.clone(),
        base: app.address.clone(),
        window,
        driver_port: driver.port,
    };

    let outcome = tokio::spawn(tokio::time::timeout(SCENARIO_TIMEOUT, scenario(app, page))).await;

    // Close before judging: a session left open can keep the test process waiting.
    if tokio::time::timeout(Duration::from_secs(10), client.close())
        .await
        .is_err()
    {
        eprintln!("the WebDriver session did not close within 10 s; killing chromedriver");
    }
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_elapsed)) => panic!("the browser scenario took longer than {SCENARIO_TIMEOUT:?}"),
        Err(join_error) if join_error.is_panic() => std::panic::resume_unwind(join_error.into_panic()),
        Err(join_error) => panic!("the browser scenario was cancelled: {join_error}"),
    }
}

fn browser_is_installed() -> bool {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os(REQUIRE_BROWSER).is_some() {
        panic!(
            "{REQUIRE_BROWSER} is set but {CHROMEDRIVER} or {CHROMIUM} is missing (apt-get install chromium chromium-driver)"
        );
    }
    eprintln!("SKIPPED: chromium-driver is not installed");
    false
}

/// chromedriver on a port of its own choosing, in its own process group.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("chromedriver's stdout is piped");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // Reads the announced port, then keeps draining stdout so chromedriver never blocks on it.
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = announced_port(&line)
                    && let Some(tx) = port_tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        // The guard exists before the wait, so a chromedriver that never answers is still killed.
        let mut driver = ChromeDriver { child, port: 0 };
        driver.port = port_rx
            .recv_timeout(WAIT_TIMEOUT)
            .unwrap_or_else(|_| panic!("chromedriver did not announce its port within {WAIT_TIMEOUT:?}"));
        driver
    }
}

/// `ChromeDriver was started successfully on port 41235.` → 41235
fn announced_port(line: &str) -> Option<u16> {
    let rest = line.split_once("was started successfully on port ")?.1;
    rest.trim().trim_end_matches('.').parse().ok()
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group holds chromedriver and every Chromium process it started.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

async fn open_session(port: u16, profile: &Path, window: Window) -> Client {
    let mut capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                format!("--window-size={},{}", window.width, window.height),
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    if window.phone {
        capabilities["goog:chromeOptions"]["mobileEmulation"] = serde_json::json!({
            "deviceMetrics": { "width": window.width, "height": window.height, "pixelRatio": 1.0 },
        });
    }
    let capabilities = capabilities.as_object().expect("an object").clone();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// The browser tab, with the steps a person takes. Every method panics with a plain sentence
/// when the page does not do what the step expects.
pub struct Page {
    client: Client,
    base: String,
    window: Window,
    driver_port: u16,
}

impl Page {
    /// The WebDriver session, for harness code beside this one (the axe-core run).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// Opens a path of the app (`/help/ip-lockout`) or a full URL.
    pub async fn open(&self, path_or_url: &str) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .path()
            .to_string()
    }

    /// Waits until the browser shows `path` (after a click or a form submission).
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected to arrive at {path}, still at {now}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element for a CSS selector, waiting for it to appear.
    pub async fn element(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no element `{css}` on {}: {e}", self.describe().await),
        }
    }

    /// Whether an element exists right now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("a search")
            .is_empty()
    }

    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// Clicks the link whose visible text is exactly `text`.
    pub async fn click_link(&self, text: &str) {
        let link = match self
            .client
            .wait()
            .at_most(WAIT_TIMEOUT)
            .for_element(Locator::LinkText(text))
            .await
        {
            Ok(link) => link,
            Err(e) => panic!("no link \"{text}\" on {}: {e}", self.describe().await),
        };
        link.click()
            .await
            .unwrap_or_else(|e| panic!("clicking the link \"{text}\": {e}"));
    }

    /// Types into a field with real key presses, after the field's current text.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        field.click().await.unwrap_or_else(|e| panic!("focusing `{css}`: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Empties a field, then types `text` into it.
    pub async fn retype(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        field.clear().await.unwrap_or_else(|e| panic!("clearing `{css}`: {e}"));
        self.type_into(css, text).await;
    }

    /// Clicks a submit button and waits for the next page to replace this one.
    pub async fn submit_with(&self, button_css: &str) {
        let old_body = self.element("body").await;
        self.click(button_css).await;
        let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
        // The old <body> goes stale once the answer to the POST has loaded.
        while old_body.tag_name().await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page did not change after clicking `{button_css}`"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.element("body").await;
    }

    /// The visible text of an element.
    pub async fn text(&self, css: &str) -> String {
        let element = self.element(css).await;
        element.text().await.unwrap_or_else(|e| panic!("reading `{css}`: {e}"))
    }

    /// The visible text of every element that matches.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = vec![];
        for element in self.client.find_all(Locator::Css(css)).await.expect("a search") {
            texts.push(element.text().await.unwrap_or_default());
        }
        texts
    }

    /// What a field currently holds (its live `value`, not the HTML attribute).
    pub async fn value(&self, css: &str) -> String {
        let element = self.element(css).await;
        element.prop("value").await.expect("a value").unwrap_or_default()
    }

    pub async fn is_checked(&self, css: &str) -> bool {
        self.element(css)
            .await
            .is_selected()
            .await
            .expect("a checkable element")
    }

    pub async fn is_visible(&self, css: &str) -> bool {
        self.element(css).await.is_displayed().await.expect("visibility")
    }

    /// How wide the page is, in CSS pixels (wider than the window means sideways scrolling).
    pub async fn page_width(&self) -> u64 {
        self.read_number("return document.documentElement.scrollWidth").await
    }

    async fn page_height(&self) -> u64 {
        self.read_number("return document.documentElement.scrollHeight").await
    }

    /// Runs a script in the page; returns its result.
    pub async fn run_script(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("running a script: {e}"))
    }

    async fn read_number(&self, script: &str) -> u64 {
        let value = self.client.execute(script, vec![]).await.expect("a script result");
        value.as_u64().unwrap_or_else(|| panic!("`{script}` gave {value}"))
    }

    /// A screenshot of the whole page at the window's width, checked to be a PNG of that width;
    /// written to docs/screenshots/`name` when RECOVERYDESK_UPDATE_SCREENSHOTS=1.
    pub async fn screenshot(&self, name: &str) -> Vec<u8> {
        // WebDriver's screenshot stops at the viewport (and an emulated phone's viewport cannot
        // grow), so this asks Chromium itself, through chromedriver's DevTools endpoint.
        let height = self.page_height().await.min(MAX_SCREENSHOT_HEIGHT);
        let shot = self
            .devtools(
                "Page.captureScreenshot",
                serde_json::json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": self.window.width, "height": height, "scale": 1 },
                }),
            )
            .await;
        let data = shot["data"]
            .as_str()
            .unwrap_or_else(|| panic!("no screenshot in {shot}"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 from Chromium");

        let (width, _) = png_size(&png).unwrap_or_else(|| panic!("{name} is not a PNG ({} bytes)", png.len()));
        assert_eq!(width, self.window.width, "{name} should be as wide as the window");
        if std::env::var(UPDATE_SCREENSHOTS).as_deref() == Ok("1") {
            let path = screenshots_dir().join(name);
            std::fs::create_dir_all(screenshots_dir()).expect("docs/screenshots can be created");
            std::fs::write(&path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            eprintln!("wrote {}", path.display());
        }
        png
    }

    /// Runs a Chrome DevTools Protocol command in this tab; returns its result.
    async fn devtools(&self, command: &str, params: serde_json::Value) -> serde_json::Value {
        let session = self
            .client
            .session_id()
            .await
            .expect("a session")
            .expect("a session id");
        let url = format!(
            "http://127.0.0.1:{}/session/{session}/goog/cdp/execute",
            self.driver_port
        );
        let answer: serde_json::Value = reqwest::Client::new()
            .post(&url)
            .json(&serde_json::json!({ "cmd": command, "params": params }))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("{command} through chromedriver: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{command} answered with something else than JSON: {e}"));
        answer["value"].clone()
    }

    /// The URL and the start of the visible text, for failure messages.
    async fn describe(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let start: String = text.chars().take(400).collect();
        format!("{url} (showing: {start:?})")
    }
}

fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join("screenshots")
}

/// Width and height from a PNG's IHDR chunk, or None when the bytes are not a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let height = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    (width > 0 && height > 0).then_some((width, height))
}

#[test]
fn the_port_is_read_from_chromedrivers_announcement() {
    assert_eq!(
        announced_port("ChromeDriver was started successfully on port 41235."),
        Some(41235)
    );
    assert_eq!(announced_port("Starting ChromeDriver 156.0.8078.79 on port 0"), None);
}

#[test]
fn a_png_size_comes_from_its_header_and_anything_else_is_not_a_png() {
    let mut header = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    header.extend_from_slice(&1024u32.to_be_bytes());
    header.extend_from_slice(&2000u32.to_be_bytes());
    assert_eq!(png_size(&header), Some((1024, 2000)));
    assert_eq!(png_size(b"<html>not a picture</html>"), None);
    assert_eq!(png_size(&[]), None);
}
