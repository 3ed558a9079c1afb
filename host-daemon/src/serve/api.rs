//! The control API, JSON over HTTP/1.1 on the control socket:
//!
//! | call                     | does                                              |
//! |--------------------------|---------------------------------------------------|
//! | `POST /sessions`         | create (body: [`Create`]); answers once it streams |
//! | `GET /sessions`          | list every session, running or ended              |
//! | `GET /sessions/NAME`     | one session, with its last second's stats         |
//! | `DELETE /sessions/NAME`  | stop it (or forget an ended one); its final figures |
//! | `POST /sessions/NAME/grants` | sign an input grant (body: `{"viewer": ID?, "ttl": SECONDS?}`) |
//! | `DELETE /sessions/NAME/grants/ID` | revoke one grant |
//! | `DELETE /sessions/NAME/viewers/ID/grants` | revoke every grant of a viewer |
//!
//! Errors answer `{"error": "…"}` with a 4xx or 5xx status.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{Create, Daemon, Refused, Revoke};

/// The largest request body taken (a create is well under a kilobyte).
const MAX_BODY: usize = 64 * 1024;

pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/sessions", get(list).post(create))
        .route("/sessions/{name}", get(one).delete(stop))
        .route("/sessions/{name}/grants", axum::routing::post(grant))
        .route(
            "/sessions/{name}/grants/{id}",
            axum::routing::delete(revoke_grant),
        )
        .route(
            "/sessions/{name}/viewers/{viewer}/grants",
            axum::routing::delete(revoke_viewer),
        )
        .fallback(|| async { Refused::new(404, "no such call: see `host-daemon ctl --help`") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(daemon)
}

async fn list(State(daemon): State<Arc<Daemon>>) -> Response {
    axum::Json(json!({ "sessions": daemon.list() })).into_response()
}

async fn one(State(daemon): State<Arc<Daemon>>, Path(name): Path<String>) -> Response {
    answer(daemon.get(&name), StatusCode::OK)
}

async fn create(State(daemon): State<Arc<Daemon>>, body: Bytes) -> Response {
    let request: Create = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return Refused::new(400, format!("the request: {err}")).into_response(),
    };
    answer(daemon.create(request).await, StatusCode::CREATED)
}

/// `POST /sessions/NAME/grants`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub viewer: Option<String>,
    /// Seconds.
    pub ttl: Option<u64>,
}

async fn grant(
    State(daemon): State<Arc<Daemon>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let body: &[u8] = if body.is_empty() { b"{}" } else { &body };
    let request: GrantRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => return Refused::new(400, format!("the request: {err}")).into_response(),
    };
    let ttl = request.ttl.map(std::time::Duration::from_secs);
    match daemon.grant(&name, request.viewer.as_deref(), ttl) {
        Ok(grant) => (StatusCode::CREATED, axum::Json(grant)).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn revoke_grant(
    State(daemon): State<Arc<Daemon>>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    revoked(daemon.revoke(&name, Revoke::Grant(&id)))
}

async fn revoke_viewer(
    State(daemon): State<Arc<Daemon>>,
    Path((name, viewer)): Path<(String, String)>,
) -> Response {
    revoked(daemon.revoke(&name, Revoke::Viewer(&viewer)))
}

fn revoked(result: Result<super::Revoked, Refused>) -> Response {
    match result {
        Ok(revoked) => axum::Json(revoked).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn stop(State(daemon): State<Arc<Daemon>>, Path(name): Path<String>) -> Response {
    answer(daemon.stop(&name).await, StatusCode::OK)
}

fn answer(result: Result<super::Info, Refused>, ok: StatusCode) -> Response {
    match result {
        Ok(info) => (ok, axum::Json(info)).into_response(),
        Err(refused) => refused.into_response(),
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let refusal = super::ctl::Refusal {
            error: self.message,
        };
        (status, axum::Json(refusal)).into_response()
    }
}
