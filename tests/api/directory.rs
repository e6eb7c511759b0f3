use crate::both_backends;
use crate::helpers::{TestApp, account};
use serde_json::json;

both_backends!(imports_upsert_by_id_and_refuse_bad_lines_alone, import_rules);

async fn import_rules(app: TestApp) {
    let summary = app.import_accounts(&[
        account("acc_1", "one", "one@x.test", "active"),
        account("acc_2", "one", "two@x.test", "active"),
        json!({"id": "acc_3", "username": "three", "email": "nope", "status": "active"}),
        json!({"id": "acc_4", "username": "four", "email": "f@x.test", "status": "frozen"}),
        json!({"id": "acc_5", "username": "five", "email": "f@x.test", "status": "active", "password": "x"}),
        account("acc_6", "  spaced name ", "six@x.test", "active"),
    ]);
    assert_eq!((summary.created, summary.updated), (2, 0));
    let lines: Vec<usize> = summary.refused.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, vec![2, 3, 4, 5], "{:?}", summary.refused);
    assert!(summary.refused[0].1.contains("already belongs to account acc_1"));

    let mut updated = account("acc_1", "one-renamed", "One@X.test", "terminated");
    updated["balance_due_cents"] = json!(700);
    let summary = app.import_accounts(&[updated]);
    assert_eq!((summary.created, summary.updated), (0, 1));
    let (_, acc) = app.get("/api/v1/accounts/acc_1").await;
    assert_eq!(
        (
            acc["username"].clone(),
            acc["status"].clone(),
            acc["balance_due_cents"].clone()
        ),
        (json!("one-renamed"), json!("terminated"), json!(700))
    );
    let (_, acc) = app.get("/api/v1/accounts/acc_6").await;
    assert_eq!(acc["username"], "  spaced name ");
}
