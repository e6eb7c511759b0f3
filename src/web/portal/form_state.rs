//! A form's values and the messages shown next to its fields.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct FormState {
    values: HashMap<String, String>,
    errors: Vec<(&'static str, String)>,
    /// A message about the whole form (not one field), shown above it.
    notice: Option<String>,
}

impl FormState {
    pub fn from_values(values: HashMap<String, String>) -> Self {
        FormState {
            values,
            errors: vec![],
            notice: None,
        }
    }

    pub fn with_value(mut self, name: &str, value: impl Into<String>) -> Self {
        self.values.insert(name.to_string(), value.into());
        self
    }

    /// The value as typed (empty when absent): the template escapes it.
    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn trimmed(&self, name: &str) -> Option<String> {
        Some(self.value(name).trim().to_string()).filter(|v| !v.is_empty())
    }

    /// The value byte-exact (usernames can be anything, spaces included), if not empty.
    pub fn exact(&self, name: &str) -> Option<String> {
        Some(self.value(name).to_string()).filter(|v| !v.is_empty())
    }

    pub fn is(&self, name: &str, expected: &str) -> bool {
        self.value(name) == expected
    }

    pub fn add_error(&mut self, name: &'static str, message: impl Into<String>) {
        if self.error(name).is_none() {
            self.errors.push((name, message.into()));
        }
    }

    pub fn set_notice(&mut self, text: impl Into<String>) {
        self.notice = Some(text.into());
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    pub fn error(&self, name: &str) -> Option<&str> {
        self.errors.iter().find(|(n, _)| *n == name).map(|(_, m)| m.as_str())
    }

    pub fn errors(&self) -> &[(&'static str, String)] {
        &self.errors
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `field` or `field has-error`, for the wrapper of a field.
    pub fn class(&self, name: &str) -> &'static str {
        if self.error(name).is_some() {
            "field has-error"
        } else {
            "field"
        }
    }

    /// Checks a text field's length (in characters).
    pub fn limit(&mut self, name: &'static str, max: usize) {
        if self.value(name).chars().count() > max {
            self.add_error(name, format!("Please keep this under {max} characters."));
        }
    }
}
