//! `multipart/form-data` bodies (the status-page reply with its files), read without trusting
//! them: one pass over a body already bounded in size, a bounded number of parts, and anything
//! malformed refused as a whole rather than guessed at.

use memchr::memmem;

/// One field or file of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    /// Present (possibly empty) for a file input.
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipartError {
    /// Not `multipart/form-data`, or no usable boundary.
    NotMultipart,
    Malformed,
    TooManyParts,
}

/// Longest header block of one part; a browser writes about a hundred bytes.
const MAX_PART_HEADERS: usize = 8 * 1024;

/// The boundary of a `multipart/form-data` Content-Type (1 to 70 characters, RFC 2046).
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = parameters(params)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))?
        .1;
    (1..=70).contains(&value.len()).then_some(value)
}

/// The boundary of a request's body, when it is `multipart/form-data`; none for any other
/// encoding (a browser may send a form either way).
pub fn boundary_of(req: &actix_web::HttpRequest) -> Option<String> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    boundary(content_type)
}

/// The parts of `body`, at most `max_parts` of them.
pub fn parse<'a>(body: &'a [u8], boundary: &str, max_parts: usize) -> Result<Vec<Part<'a>>, MultipartError> {
    let first = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let next_finder = memmem::Finder::new(next.as_bytes());
    let start = memmem::find(body, first.as_bytes()).ok_or(MultipartError::Malformed)?;
    let mut at = start + first.len();
    let mut parts = vec![];
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding (spaces, tabs) may follow a delimiter, then the line ends.
        let padding = rest.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        let rest = rest[padding..].strip_prefix(b"\r\n").ok_or(MultipartError::Malformed)?;
        let header_end = memmem::find(&rest[..rest.len().min(MAX_PART_HEADERS + 4)], b"\r\n\r\n")
            .ok_or(MultipartError::Malformed)?;
        let headers = std::str::from_utf8(&rest[..header_end]).map_err(|_| MultipartError::Malformed)?;
        let content = &rest[header_end + 4..];
        let end = next_finder.find(content).ok_or(MultipartError::Malformed)?;
        if parts.len() == max_parts {
            return Err(MultipartError::TooManyParts);
        }
        parts.push(part(headers, &content[..end])?);
        at = body.len() - content.len() + end + next.len();
    }
}

fn part<'a>(headers: &str, data: &'a [u8]) -> Result<Part<'a>, MultipartError> {
    let mut disposition = None;
    let mut content_type = None;
    for line in headers.split("\r\n") {
        let (name, value) = line.split_once(':').ok_or(MultipartError::Malformed)?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_string());
        }
    }
    let disposition = disposition.ok_or(MultipartError::Malformed)?;
    let (kind, params) = disposition.split_once(';').unwrap_or((disposition, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(MultipartError::Malformed);
    }
    let params = parameters(params);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    Ok(Part {
        name: get("name").ok_or(MultipartError::Malformed)?,
        filename: get("filename"),
        content_type,
        data,
    })
}

/// `; key=value; key="quoted \" value"` → pairs. Malformed pieces are skipped.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ';' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ';')).collect();
        if chars.next_if_eq(&'=').is_none() {
            if chars.peek().is_none() {
                return out;
            }
            continue;
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ';'))
                .collect::<String>()
                .trim()
                .to_string()
        };
        out.push((key.trim().to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "----WebKitFormBoundaryAbC123";

    fn body(parts: &[&str]) -> Vec<u8> {
        let mut out = String::new();
        for p in parts {
            out.push_str(&format!("--{B}\r\n{p}\r\n"));
        }
        out.push_str(&format!("--{B}--\r\n"));
        out.into_bytes()
    }

    #[test]
    fn a_browsers_form_with_a_text_field_and_a_file_is_read() {
        let b = body(&[
            "Content-Disposition: form-data; name=\"body\"\r\n\r\nHello,\r\nit still fails.",
            "Content-Disposition: form-data; name=\"files\"; filename=\"log \\\"1\\\".txt\"\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two",
        ]);
        let parts = parse(&b, B, 10).unwrap_or_default();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "body");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[0].data, b"Hello,\r\nit still fails.");
        assert_eq!(parts[1].filename.as_deref(), Some("log \"1\".txt"));
        assert_eq!(parts[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(parts[1].data, b"line one\r\nline two");
    }

    #[test]
    fn the_boundary_is_read_from_the_content_type() {
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={B}")),
            Some(B.to_string())
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""),
            Some("a b".into())
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            None
        );
        assert_eq!(boundary("multipart/mixed; boundary=abc"), None);
    }

    #[test]
    fn an_empty_file_input_is_a_part_with_an_empty_filename() {
        let b = body(&[
            "Content-Disposition: form-data; name=\"files\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        ]);
        let parts = parse(&b, B, 10).unwrap_or_default();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].filename.as_deref(), Some(""));
        assert!(parts[0].data.is_empty());
    }

    #[test]
    fn hostile_bodies_are_refused_whole() {
        let unterminated = format!("--{B}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nno end");
        let no_headers_end = format!("--{B}\r\nContent-Disposition: form-data; name=\"body\"\r\nno blank line");
        let no_name = format!("--{B}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{B}--");
        let not_form_data = format!("--{B}\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--{B}--");
        let header_line_without_colon = format!("--{B}\r\nnonsense\r\n\r\nx\r\n--{B}--");
        let huge_headers = format!("--{B}\r\nX: {}\r\n\r\nx\r\n--{B}--", "a".repeat(MAX_PART_HEADERS + 10));
        let bad_utf8 = [
            format!("--{B}\r\nContent-Disposition: form-data; name=\"").into_bytes(),
            vec![0xff, 0xfe],
            format!("\"\r\n\r\nx\r\n--{B}--").into_bytes(),
        ]
        .concat();
        for hostile in [
            unterminated.into_bytes(),
            no_headers_end.into_bytes(),
            no_name.into_bytes(),
            not_form_data.into_bytes(),
            header_line_without_colon.into_bytes(),
            huge_headers.into_bytes(),
            bad_utf8,
            b"".to_vec(),
            b"no boundary at all".to_vec(),
            format!("--{B}garbage").into_bytes(),
        ] {
            assert_eq!(
                parse(&hostile, B, 10).map(|p| p.len()),
                Err(MultipartError::Malformed),
                "{}",
                String::from_utf8_lossy(&hostile[..hostile.len().min(120)])
            );
        }
    }

    #[test]
    fn too_many_parts_are_refused_and_a_large_body_is_read_in_one_pass() {
        let many: Vec<String> = (0..50)
            .map(|i| format!("Content-Disposition: form-data; name=\"f{i}\"\r\n\r\nv"))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(parse(&body(&refs), B, 20), Err(MultipartError::TooManyParts));
        // A file of nothing but near-boundaries: each "\r\n--" is looked at once.
        let near = format!("\r\n--{}", &B[..B.len() - 1]).repeat(50_000);
        let big = body(&[&format!(
            "Content-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\n{near}"
        )]);
        let parts = parse(&big, B, 20).unwrap_or_default();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].data.len(), near.len());
    }
}
