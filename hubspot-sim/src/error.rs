//! HubSpot-shaped error responses.
//!
//! Every error the simulator returns goes through [`ApiError`], so bodies always carry
//! `status`, `message`, `correlationId` and `category` the way HubSpot's do.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One HubSpot error response: a status code and the JSON body HubSpot would send.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    /// Extra response headers (kept small: most errors have none).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub fn correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl ApiError {
    /// The common `{status, message, correlationId, category}` body plus extra fields.
    pub fn new(status: StatusCode, category: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({
                "status": "error",
                "message": message.into(),
                "correlationId": correlation_id(),
                "category": category,
            }),
            headers: Vec::new(),
        }
    }

    /// Adds (or replaces) a top-level field of the body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        if let Value::Object(map) = &mut self.body {
            map.insert(key.to_string(), value);
        }
        self
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    pub fn category(&self) -> &str {
        self.body["category"].as_str().unwrap_or_default()
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// HubSpot's wording for property validation failures: the per-property details are
    /// serialised as JSON *inside* the message string, and repeated under `errors`.
    pub fn invalid_properties(portal_id: u64, problems: &[PropertyProblem]) -> Self {
        let details: Vec<Value> = problems
            .iter()
            .map(|p| {
                json!({
                    "isValid": false,
                    "message": p.message,
                    "error": p.code,
                    "name": p.name,
                    "localizedErrorMessage": p.message,
                    "portalId": portal_id,
                })
            })
            .collect();
        let errors: Vec<Value> = problems
            .iter()
            .map(|p| {
                json!({
                    "message": p.message,
                    "code": p.code,
                    "context": {"propertyName": [p.name]},
                })
            })
            .collect();
        Self::validation(format!(
            "Property values were not valid: {}",
            Value::Array(details)
        ))
        .with("errors", Value::Array(errors))
    }

    pub fn conflict_existing(existing_id: u64, object_label: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            format!("{object_label} already exists. Existing ID: {existing_id}"),
        )
    }

    pub fn object_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
        )
        .with("context", json!({ "id": [id] }))
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("No route matches {path}"),
        )
    }

    pub fn unknown_object_type(name: &str) -> Self {
        Self::validation(format!("Unable to infer object type from: {name}"))
    }

    /// HubSpot answers a missing, malformed or unknown private-app token the same way.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )
    }

    /// HubSpot's answer to an OAuth access token past its expiry.
    pub fn expired(by: std::time::Duration) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "EXPIRED_AUTHENTICATION",
            format!(
                "The OAuth token used to make this call expired {} second(s) ago.",
                by.as_secs()
            ),
        )
    }

    /// HubSpot's 429 body. Rate-limit bodies carry `errorType` and `policyName` instead of
    /// `category`.
    pub fn rate_limited(policy: RatePolicy) -> Self {
        let message = match policy {
            RatePolicy::TenSecondlyRolling => "You have reached your ten_secondly_rolling limit.",
            RatePolicy::Secondly => "You have reached your secondly limit.",
            RatePolicy::Daily => "You have reached your daily limit.",
        };
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({
                "status": "error",
                "message": message,
                "errorType": "RATE_LIMIT",
                "correlationId": correlation_id(),
                "policyName": policy.name(),
                "requestId": correlation_id(),
            }),
            headers: Vec::new(),
        }
    }

    /// A body for an injected status code, shaped like what HubSpot sends for it.
    pub fn injected(status: StatusCode) -> Self {
        match status.as_u16() {
            429 => Self::rate_limited(RatePolicy::TenSecondlyRolling),
            401 => Self::unauthorized(),
            403 => Self::new(
                status,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call.",
            ),
            404 => Self::object_not_found("injected"),
            409 => Self::new(status, "CONFLICT", "Injected conflict."),
            423 => Self::new(
                status,
                "LOCKED",
                "The resource is locked; try again in a few seconds.",
            ),
            400..=499 => Self::validation("Injected client error."),
            _ => Self::new(
                status,
                "INTERNAL_ERROR",
                format!(
                    "{} (injected by the simulator)",
                    status.canonical_reason().unwrap_or("Server error")
                ),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// One invalid property in a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyProblem {
    pub name: String,
    pub code: &'static str,
    pub message: String,
}

/// The rate-limit policies HubSpot names in its 429 bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePolicy {
    TenSecondlyRolling,
    Secondly,
    Daily,
}

impl RatePolicy {
    pub fn name(self) -> &'static str {
        match self {
            RatePolicy::TenSecondlyRolling => "TEN_SECONDLY_ROLLING",
            RatePolicy::Secondly => "SECONDLY",
            RatePolicy::Daily => "DAILY",
        }
    }
}
