use super::AppState;
use actix_web::{HttpResponse, web};

/// 200 when the database answers, 503 otherwise (for load balancers and monitoring).
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let reachable = state.run(|conn, _| Ok(crate::db::ping(conn))).await.unwrap_or(false);
    if reachable {
        HttpResponse::Ok().json(serde_json::json!({"status": "ok", "database": "reachable"}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unavailable", "database": "unreachable"}))
    }
}
