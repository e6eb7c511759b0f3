//! `multipart/form-data` (RFC 7578) as providers post inbound mail: fields and files, their
//! bytes untouched (a raw message or a body in any charset). One pass with memchr's searcher;
//! the number of fields is bounded so a post of a million empty fields costs nothing.

use memchr::memmem;

/// One field or file of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// Most fields a post may have (SendGrid posts a dozen plus one per attachment).
pub const MAX_FIELDS: usize = 2000;

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_start().starts_with("multipart/form-data") {
        return None;
    }
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        (key.trim().eq_ignore_ascii_case("boundary"))
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// The fields of a form body; an error says why it is not one.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Field>, String> {
    let delimiter = format!("--{boundary}");
    let finder = memmem::Finder::new(delimiter.as_bytes());
    let Some(first) = finder.find(body) else {
        return Err("the form has no part with its boundary".into());
    };
    let mut fields = vec![];
    let mut at = first + delimiter.len();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        // The delimiter line ends with CRLF (or LF from a lax client).
        let Some(line_end) = memchr::memchr(b'\n', rest) else {
            return Err("the form ends inside a delimiter line".into());
        };
        let part_start = at + line_end + 1;
        let Some(next) = finder.find(&body[part_start..]) else {
            return Err("the form is not closed by its boundary".into());
        };
        let mut part = &body[part_start..part_start + next];
        // The CRLF before the next delimiter belongs to it.
        part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        fields.push(field(part)?);
        if fields.len() > MAX_FIELDS {
            return Err(format!("the form has more than {MAX_FIELDS} fields"));
        }
        at = part_start + next + delimiter.len();
    }
}

fn field(part: &[u8]) -> Result<Field, String> {
    let (head, data) = match memmem::find(part, b"\r\n\r\n") {
        Some(i) => (&part[..i], &part[i + 4..]),
        None => match memmem::find(part, b"\n\n") {
            Some(i) => (&part[..i], &part[i + 2..]),
            None => (part, &[][..]),
        },
    };
    let head = String::from_utf8_lossy(head);
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                name = parameter(value, "name");
                filename = parameter(value, "filename");
            }
            "content-type" => content_type = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let name = name.ok_or("a form part has no name")?;
    Ok(Field {
        name,
        filename,
        content_type,
        data: data.to_vec(),
    })
}

/// `name="value"` (quoted, with `\"`) or `name=value` among `;`-separated parameters.
fn parameter(header: &str, wanted: &str) -> Option<String> {
    let mut rest = header;
    while let Some(semi) = rest.find(';') {
        rest = rest[semi + 1..].trim_start();
        let (key, after) = rest.split_once('=')?;
        if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if key.trim().eq_ignore_ascii_case(wanted) {
                return Some(value);
            }
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let value = after.split(';').next().unwrap_or_default().trim();
            if key.trim().eq_ignore_ascii_case(wanted) {
                return Some(value.to_string());
            }
            rest = after;
        }
    }
    None
}

/// The first field called `name`.
pub fn get<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.name == name)
}

/// The first field called `name`, as text (lossy for bytes that are not UTF-8).
pub fn text(fields: &[Field], name: &str) -> Option<String> {
    get(fields, name).map(|f| String::from_utf8_lossy(&f.data).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"a \\\"b\\\".pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\x00\xff\r\n--XyZ--\r\n";
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let fields = parse(body, &boundary(ct).unwrap()).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(text(&fields, "text").as_deref(), Some("hello"));
        let file = get(&fields, "attachment1").unwrap();
        assert_eq!(file.filename.as_deref(), Some("a \"b\".pdf"));
        assert_eq!(file.content_type.as_deref(), Some("application/pdf"));
        assert_eq!(file.data, b"%PDF\x00\xff");
    }

    #[test]
    fn hostile_forms_are_refused_not_panicked_on() {
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        for body in [
            &b""[..],
            b"--b",
            b"--b\r\n",
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
        ] {
            assert!(parse(body, "b").is_err());
        }
        let many: Vec<u8> = "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n"
            .repeat(MAX_FIELDS + 5)
            .into_bytes();
        assert!(parse(&[many, b"--b--".to_vec()].concat(), "b").is_err());
    }
}
