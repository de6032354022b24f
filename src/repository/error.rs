//! Repository errors: each names the object it is about, in one line.

/// Result of repository operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tenant key object was wrapped with another master key than the one configured.
    #[error(
        "wrong master key for tenant {tenant}: {object} was sealed with master key {stored}, the configured master key is {configured}"
    )]
    WrongMasterKey { tenant: String, object: String, stored: String, configured: String },
    /// An object that something refers to does not exist.
    #[error("missing object {object}")]
    Missing { object: String },
    /// An object exists but does not decode, decrypt or hash to its id.
    #[error("corrupt object {object}: {reason}")]
    Corrupt { object: String, reason: String },
    /// A chunk id that is not in the chunk index (nor in the open pack).
    #[error("chunk {chunk} is not in the index of {scope}")]
    UnknownChunk { chunk: String, scope: String },
    /// The object store failed (I/O, network, permissions).
    #[error("object store failed on {object}: {source}")]
    Store {
        object: String,
        #[source]
        source: object_store::Error,
    },
    /// Bad input from the caller (an invalid tenant id, a malformed master key, ...).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn corrupt(object: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Self::Corrupt { object: object.to_string(), reason: reason.into() }
    }

    /// Maps an object store error, turning "not found" into [`Error::Missing`].
    pub(crate) fn store(object: impl std::fmt::Display, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::Missing { object: object.to_string() },
            source => Self::Store { object: object.to_string(), source },
        }
    }
}

impl Error {
    /// The object (or chunk) this error is about, if it names one.
    pub fn object(&self) -> Option<&str> {
        match self {
            Error::WrongMasterKey { object, .. }
            | Error::Missing { object }
            | Error::Corrupt { object, .. }
            | Error::Store { object, .. } => Some(object),
            Error::UnknownChunk { chunk, .. } => Some(chunk),
            Error::Invalid(_) => None,
        }
    }
}
