//! Errors of the Azure Files client.
//!
//! Every error names the operation and what it was applied to (`share/path`), so one line in a log says
//! what failed and where, e.g. `list directory devshare/a/b: 404 ShareNotFound: The specified share does
//! not exist.`

use std::fmt;

/// What went wrong, without the context of which operation it was.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// The service answered with a non-success status (after any retries).
    Status {
        status: u16,
        /// Azure's error code (`x-ms-error-code` or the XML `<Code>`), e.g. `ShareNotFound`.
        code: Option<String>,
        /// The first line of Azure's message (the rest is a request id and time).
        message: Option<String>,
    },
    /// The request could not be completed (connection refused or reset, timeout, incomplete body),
    /// after any retries.
    Transport(String),
    /// The response body was not what the protocol promises: malformed XML or JSON, a body shorter than
    /// its Content-Length or Content-Range, a missing header.
    Protocol(String),
    /// The client's address policy refused the host's address ([`super::AddressPolicy`]); nothing was
    /// sent. Never retried.
    Refused(String),
    /// The call itself was invalid (for example a write through a read-only snapshot view, or a range
    /// larger than 4 MiB); nothing was sent.
    Invalid(String),
}

/// An Azure Files client error: the operation, its target, and what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct AzureError {
    /// The operation, e.g. `list directory`.
    pub operation: &'static str,
    /// What it was applied to: the account's service (`""`), `share`, or `share/path`.
    pub target: String,
    pub kind: ErrorKind,
}

impl AzureError {
    pub fn new(operation: &'static str, target: impl Into<String>, kind: ErrorKind) -> AzureError {
        AzureError { operation, target: target.into(), kind }
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Azure's error code, when the service gave one (e.g. `ShareNotFound`, `AuthenticationFailed`).
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// True for 404 answers (missing share, directory, file, or parent).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

impl fmt::Display for AzureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        if !self.target.is_empty() {
            write!(f, " {}", self.target)?;
        }
        f.write_str(": ")?;
        match &self.kind {
            ErrorKind::Status { status, code, message } => {
                write!(f, "{status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            ErrorKind::Transport(m) => write!(f, "transport error: {m}"),
            ErrorKind::Protocol(m) => write!(f, "bad response: {m}"),
            ErrorKind::Invalid(m) => write!(f, "invalid request: {m}"),
            ErrorKind::Refused(m) => write!(f, "connection refused by policy: {m}"),
        }
    }
}

impl std::error::Error for AzureError {}

/// The first line of an Azure error message, trimmed (Azure appends `RequestId:` and `Time:` lines).
pub fn first_line(message: &str) -> Option<String> {
    message.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_target_status_code_and_message() {
        let e = AzureError::new(
            "list directory",
            "devshare/a/b",
            ErrorKind::Status {
                status: 404,
                code: Some("ShareNotFound".into()),
                message: first_line("The specified share does not exist.\nRequestId:1\nTime:2026"),
            },
        );
        assert_eq!(
            e.to_string(),
            "list directory devshare/a/b: 404 ShareNotFound: The specified share does not exist."
        );
        assert!(e.is_not_found());
        assert_eq!(e.code(), Some("ShareNotFound"));
        let e = AzureError::new("list shares", "", ErrorKind::Status { status: 503, code: None, message: None });
        assert_eq!(e.to_string(), "list shares: 503");
        let e = AzureError::new("get file properties", "s/f", ErrorKind::Transport("connection reset".into()));
        assert_eq!(e.to_string(), "get file properties s/f: transport error: connection reset");
        assert_eq!(e.status(), None);
    }
}
