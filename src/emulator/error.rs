//! Azure Files error responses: each error code with its HTTP status and Azure's standard message.
//!
//! Every error is answered with the `x-ms-error-code` header and, except for HEAD requests, Azure's XML
//! body `<Error><Code>…</Code><Message>…\nRequestId:…\nTime:…</Message>…</Error>`.

use http::StatusCode;

/// One failed request: the Azure error code, its status, and details for the body.
#[derive(Debug, Clone)]
pub struct StorageError {
    pub status: StatusCode,
    /// Azure's error code, e.g. `ShareNotFound`; also sent as `x-ms-error-code`.
    pub code: &'static str,
    /// The message before the `RequestId`/`Time` lines.
    pub message: String,
    /// Extra elements after `<Message>`, e.g. `("HeaderName", "x-ms-range")`.
    pub details: Vec<(&'static str, String)>,
}

pub type StorageResult<T> = Result<T, StorageError>;

impl StorageError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        StorageError { status, code, message: message.into(), details: Vec::new() }
    }

    /// Adds an element after `<Message>` in the XML body.
    pub fn with(mut self, element: &'static str, value: impl Into<String>) -> Self {
        self.details.push((element, value.into()));
        self
    }

    pub fn share_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ShareNotFound", "The specified share does not exist.")
    }
    pub fn share_snapshot_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ShareSnapshotNotFound", "The specified share snapshot does not exist.")
    }
    pub fn share_already_exists() -> Self {
        Self::new(StatusCode::CONFLICT, "ShareAlreadyExists", "The specified share already exists.")
    }
    pub fn share_has_snapshots() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "ShareHasSnapshots",
            "The share has snapshots and the operation requires no snapshots.",
        )
    }
    pub fn resource_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", "The specified resource does not exist.")
    }
    pub fn parent_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ParentNotFound", "The specified parent path does not exist.")
    }
    pub fn resource_already_exists() -> Self {
        Self::new(StatusCode::CONFLICT, "ResourceAlreadyExists", "The specified resource already exists.")
    }
    pub fn resource_type_mismatch() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "ResourceTypeMismatch",
            "The specified resource type does not match the type of the resource.",
        )
    }
    pub fn directory_not_empty() -> Self {
        Self::new(StatusCode::CONFLICT, "DirectoryNotEmpty", "The specified directory is not empty.")
    }
    /// Azure's message really says "specifed".
    pub fn invalid_resource_name() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            "The specifed resource name contains invalid characters.",
        )
    }
    pub fn invalid_header_value(header: &str, value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidHeaderValue",
            "The value for one of the HTTP headers is not in the correct format.",
        )
        .with("HeaderName", header)
        .with("HeaderValue", value)
    }
    pub fn missing_required_header(header: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified.",
        )
        .with("HeaderName", header)
    }
    pub fn invalid_range() -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
        )
    }
    pub fn invalid_query_parameter(name: &str, value: &str, reason: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
        )
        .with("QueryParameterName", name)
        .with("QueryParameterValue", value)
        .with("Reason", reason)
    }
    pub fn out_of_range_query_parameter(name: &str, value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "OutOfRangeQueryParameterValue",
            "One of the query parameters specified in the request URI is outside the permissible range.",
        )
        .with("QueryParameterName", name)
        .with("QueryParameterValue", value)
    }
    pub fn missing_required_query_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified.",
        )
        .with("QueryParameterName", name)
    }
    pub fn out_of_range_input(reason: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "OutOfRangeInput", "One of the request inputs is out of range.")
            .with("Reason", reason)
    }
    pub fn invalid_input(reason: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidInput", "One of the request inputs is not valid.")
            .with("Reason", reason)
    }
    pub fn invalid_metadata() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidMetadata",
            "The metadata specified is invalid. It has characters that are not permitted.",
        )
    }
    pub fn unsupported_http_verb() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            "The resource doesn't support specified Http Verb.",
        )
    }
    pub fn invalid_uri() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        )
    }
    /// 409 for changes to a virtual share (emulator-only code): only Snapshot Share and deleting its
    /// snapshots are allowed.
    pub fn virtual_share_read_only() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "VirtualShareIsReadOnly",
            "The share is a virtual share of the emulator: it is read-only apart from Snapshot Share and deleting its snapshots.",
        )
    }
    pub fn request_body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        )
    }
    /// 403: the signature, date or validity window is wrong; `detail` goes to `<AuthenticationErrorDetail>`.
    pub fn authentication_failed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        )
        .with("AuthenticationErrorDetail", detail)
    }
    pub fn no_authentication_information() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        )
    }
    pub fn permission_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        )
    }
    pub fn service_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationServiceMismatch",
            "This request is not authorized to perform this operation using this service.",
        )
    }
    pub fn resource_type_not_authorized() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationResourceTypeMismatch",
            "This request is not authorized to perform this operation using this resource type.",
        )
    }
    pub fn protocol_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationProtocolMismatch",
            "This request is not authorized to perform this operation using this protocol.",
        )
    }
    /// 500 for failures of the emulator itself (storage errors); the cause goes to the log and `<Reason>`.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("emulator internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Server encountered an internal error. Please try again after some time.",
        )
        .with("Reason", cause.to_string())
    }

    /// The XML error body for this error.
    pub fn xml_body(&self, request_id: &str, time: &str) -> String {
        let mut s = String::with_capacity(512);
        s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>");
        s.push_str(self.code);
        s.push_str("</Code><Message>");
        s.push_str(&super::xml::escape(&format!("{}\nRequestId:{request_id}\nTime:{time}", self.message)));
        s.push_str("</Message>");
        for (name, value) in &self.details {
            s.push('<');
            s.push_str(name);
            s.push('>');
            s.push_str(&super::xml::escape(value));
            s.push_str("</");
            s.push_str(name);
            s.push('>');
        }
        s.push_str("</Error>");
        s
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::internal(format!("sqlite: {e}"))
    }
}
