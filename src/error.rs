//! The one error type every handler returns, and the error body of API.md.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    #[schema(example = "VALIDATION_ERROR")]
    pub code: String,
    pub message: String,
    pub details: Option<Vec<FieldError>>,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The most field errors one answer lists; the message says how many there were.
pub const MAX_DETAILS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Auth(&'static str),
    #[error("forbidden")]
    Forbidden,
    /// An email-verification or password-reset token that is unknown, used or expired.
    #[error("invalid or expired token")]
    InvalidToken,
    /// The action needs a verified email (`REQUIRE_VERIFIED_EMAIL`).
    #[error("email not verified")]
    EmailNotVerified,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("payload too large")]
    PayloadTooLarge,
    /// The request body stopped arriving before it was complete.
    #[error("request body timed out")]
    RequestTimeout,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("idempotency key reused with a different body")]
    IdempotencyMismatch,
    /// Past a rate limit; the `RateLimit*` and `Retry-After` headers of the policies that
    /// applied.
    #[error("rate limited")]
    RateLimited(header::HeaderMap),
    /// Too much work of one kind at once (password hashing): come back shortly.
    #[error("overloaded")]
    Overloaded,
    #[error("service unavailable")]
    Unavailable,
    /// Another module this request needs (or forwards to) cannot be reached.
    #[error("the {0} module is unavailable")]
    ModuleUnavailable(&'static str),
    /// Another module did not answer within the time allowed.
    #[error("the {0} module did not answer in time")]
    ModuleTimeout(&'static str),
    /// The card was declined; the provider's message is passed on.
    #[error("payment required: {0}")]
    PaymentRequired(String),
    /// The payment provider is down or too slow.
    #[error("the payment provider is unavailable")]
    PaymentUnavailable,
    /// The payment provider refused the request for a reason that is not the customer's.
    #[error("the payment provider refused the request")]
    PaymentProviderError,
    /// A bug. The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(error = %message, "internal error");
        Self::Internal(message)
    }

    /// A 429 telling the client how many seconds to wait.
    pub fn retry_after(seconds: i64) -> Self {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(seconds.max(1)),
        );
        Self::RateLimited(headers)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_ERROR",
            Self::Auth(_) => "AUTH_ERROR",
            Self::Forbidden => "FORBIDDEN",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict(_) => "CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyMismatch => "IDEMPOTENCY_MISMATCH",
            Self::RateLimited(_) => "RATE_LIMITED",
            Self::Unavailable
            | Self::Overloaded
            | Self::ModuleUnavailable(_)
            | Self::ModuleTimeout(_) => "SERVICE_UNAVAILABLE",
            Self::PaymentRequired(_) => "PAYMENT_REQUIRED",
            Self::PaymentUnavailable => "PAYMENT_UNAVAILABLE",
            Self::PaymentProviderError => "PAYMENT_PROVIDER_ERROR",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Validation(_) => "Invalid input".into(),
            Self::Auth(m) => (*m).into(),
            Self::Forbidden => "You are not allowed to do this".into(),
            Self::InvalidToken => "The link is invalid, already used or expired".into(),
            Self::EmailNotVerified => "Verify your email address first".into(),
            Self::NotFound => "Not found".into(),
            Self::MethodNotAllowed => "Method not allowed".into(),
            Self::Conflict(m) => m.clone(),
            Self::PayloadTooLarge => "Request body is too large".into(),
            Self::RequestTimeout => "The request body stopped arriving".into(),
            Self::UnsupportedMediaType => "Request body must be application/json".into(),
            Self::IdempotencyMismatch => {
                "Idempotency-Key was already used with a different request body".into()
            }
            Self::RateLimited(_) => "Too many requests".into(),
            Self::Overloaded => "The server is busy; try again shortly".into(),
            Self::Unavailable => "A service this request needs is unavailable".into(),
            Self::ModuleUnavailable(m) => format!("The {m} service is unavailable"),
            Self::ModuleTimeout(m) => format!("The {m} service did not answer in time"),
            Self::PaymentRequired(m) => m.clone(),
            Self::PaymentUnavailable => {
                "The payment provider is unavailable; try again shortly".into()
            }
            Self::PaymentProviderError => "The payment provider refused the request".into(),
            Self::Internal(_) => "Internal server error".into(),
        }
    }

    /// The error a bare status from the framework stands for (unknown route, 405, 413, ...).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Auth("Authentication required"),
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::CONFLICT => Self::Conflict("Conflict".into()),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited(header::HeaderMap::new()),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_client_error() => Self::Validation(vec![]),
            _ => Self::Internal(format!("status {status}")),
        }
    }

    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code(),
            "message": self.message(),
            "requestId": request_id,
        });
        if let Self::Validation(details) = self {
            error["details"] = serde_json::json!(&details[..details.len().min(MAX_DETAILS)]);
            if details.len() > MAX_DETAILS {
                error["message"] = serde_json::json!(format!(
                    "Invalid input: {} problems, the first {MAX_DETAILS} listed",
                    details.len()
                ));
            }
        }
        serde_json::json!({ "error": error })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::EmailNotVerified => StatusCode::FORBIDDEN,
            Self::InvalidToken => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable | Self::ModuleUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::ModuleTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            Self::PaymentUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::PaymentProviderError => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body gets its request id in the request-id middleware, which rewrites every
    /// error answer into the shape above.
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code()).json(self.body(""));
        let retry_after = match self {
            Self::RateLimited(headers) => {
                for (name, value) in headers {
                    res.headers_mut().insert(name.clone(), value.clone());
                }
                None
            }
            Self::Overloaded => Some(1),
            Self::Unavailable
            | Self::ModuleUnavailable(_)
            | Self::ModuleTimeout(_)
            | Self::PaymentUnavailable => Some(5),
            _ => None,
        };
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        res
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match e {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, info) => {
                tracing::warn!(error = %info.message(), "database connection lost");
                Self::Unavailable
            }
            other => Self::internal(format!("database: {other}")),
        }
    }
}

/// The name of the constraint a write broke, if it broke one.
pub fn violated_constraint(e: &diesel::result::Error) -> Option<&str> {
    match e {
        diesel::result::Error::DatabaseError(_, info) => info.constraint_name(),
        _ => None,
    }
}

pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
