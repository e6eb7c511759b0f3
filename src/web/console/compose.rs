//! The bodies of the ticket page's reply and note forms: form-encoded, or
//! `multipart/form-data` with files. Bounded like a customer's status-page reply (the whole
//! body by `RECOVERYDESK_MAX_MESSAGE_BYTES`, at most [`MAX_FILES`] files, each within the
//! attachment limit of inbound mail) and read without trusting it.

use crate::services::messages::{MAX_ATTACHMENT_BYTES, Upload};
use crate::web::AppState;
use crate::web::portal::multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use std::collections::HashMap;

/// Files one reply or note may carry (as many as a customer's reply).
pub const MAX_FILES: usize = crate::web::portal::status::MAX_FILES;

/// What the form sent, and why it cannot be taken as it is (the fields read so far are kept,
/// so the page can give the typed text back).
#[derive(Debug, Default)]
pub struct Composed {
    pub fields: HashMap<String, String>,
    pub files: Vec<Upload>,
    pub problem: Option<(StatusCode, String)>,
}

impl Composed {
    pub fn field(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    fn refuse(mut self, status: StatusCode, message: String) -> Composed {
        self.problem = Some((status, message));
        self
    }
}

pub async fn read(req: &HttpRequest, payload: web::Payload, state: &AppState) -> Composed {
    let limit = state.desk.settings.max_message_bytes;
    let Some(body) = crate::web::portal::status::read_body(req, payload, limit).await else {
        let size = crate::services::status_page::AttachmentLink {
            id: 0,
            filename: String::new(),
            size: i64::try_from(limit).unwrap_or(i64::MAX),
        }
        .size_words();
        return Composed::default().refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Nothing was sent: the text and files together are larger than {size}."),
        );
    };
    let Some(boundary) = multipart::boundary_of(req) else {
        return Composed {
            fields: serde_urlencoded::from_bytes(&body[..]).unwrap_or_default(),
            ..Composed::default()
        };
    };
    let parts = match multipart::parse(&body, &boundary, MAX_FILES + 8) {
        Ok(parts) => parts,
        Err(multipart::MultipartError::TooManyParts) => {
            return Composed::default().refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Nothing was sent: attach at most {MAX_FILES} files."),
            );
        }
        Err(_) => {
            return Composed::default().refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Nothing was sent: the browser sent this form in a way we could not read.".into(),
            );
        }
    };
    let mut composed = Composed::default();
    for part in parts {
        match part.filename {
            // An empty file input sends a nameless, empty file: nothing was chosen.
            Some(name) if name.is_empty() && part.data.is_empty() => {}
            Some(name) if part.name == "files" => composed.files.push(Upload {
                filename: if name.is_empty() { "file".into() } else { name },
                content_type: part.content_type.unwrap_or_else(|| "application/octet-stream".into()),
                data: part.data.to_vec(),
            }),
            Some(_) => {}
            None => {
                composed
                    .fields
                    .insert(part.name, String::from_utf8_lossy(part.data).into_owned());
            }
        }
    }
    if composed.files.len() > MAX_FILES {
        return composed.refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Nothing was sent: attach at most {MAX_FILES} files."),
        );
    }
    let max_mb = MAX_ATTACHMENT_BYTES / (1024 * 1024);
    if let Some(big) = composed.files.iter().find(|f| f.data.len() > MAX_ATTACHMENT_BYTES) {
        let message = format!("Nothing was sent: {} is larger than {max_mb} MB.", big.filename);
        return composed.refuse(StatusCode::UNPROCESSABLE_ENTITY, message);
    }
    composed
}
