//! In `serve` on SQLite, mail the writer commits is copied from the WAL into the database
//! file by the checkpoint thread, soon, without waiting for the WAL to reach 1,000 pages and
//! without a group of received mail waiting for the copy.

use crate::helpers::*;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Whether `needle` is in the file at `path` (read as bytes, not through SQLite).
fn file_holds(path: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_mail_reaches_the_database_file_without_waiting_for_a_full_wal() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("SQLite always runs")
        .respawn_with(&[("--inbound-token", "hook-secret-0123456789")])
        .await;
    let file = std::path::PathBuf::from(app.database_url.trim_start_matches("sqlite://"));
    let marker = "checkpoint-marker-5c1f0e";
    for n in 0..3 {
        let response = app
            .client
            .post(format!("{}/inbound/email", app.address))
            .bearer_auth("hook-secret-0123456789")
            .body(format!(
                "From: ckpt@y.test\r\nSubject: locked out {n}\r\nMessage-ID: <ckpt-{n}@y.test>\r\n\r\n{marker} {n}\r\n"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // A few messages are far from the 1,000 pages after which a commit checkpoints itself:
    // only the checkpoint thread puts them in the database file.
    let wanted = format!("{marker} 2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file_holds(&file, wanted.as_bytes()) {
        assert!(
            Instant::now() < deadline,
            "the last message is still only in the WAL: no checkpoint ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
