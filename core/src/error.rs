//! Wire codes: WebSocket close codes, HTTP handshake statuses and the `error` frame's codes.
//!
//! Every code the gateway can put on the wire is an enum variant here, and errors are
//! mapped to codes in one place (the `From` impls), as rustls maps errors to alerts. Nothing
//! in this module decides *when* a code is used; it only names them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A WebSocket close code (RFC 6455 section 7.4.1, docs/protocol.md section 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "u16", try_from = "u16")]
pub enum CloseCode {
    /// 1000: normal closure (the client said goodbye).
    Normal,
    /// 1001: the server is going away (shutdown, crash-restart).
    GoingAway,
    /// 1003: a binary or otherwise unsupported frame.
    Unsupported,
    /// 1007: a text frame that is not valid UTF-8.
    InvalidPayload,
    /// 1008: policy violation: expired or revoked token, abuse, protocol-error budget spent.
    Policy,
    /// 1009: a frame over the configured maximum size.
    TooBig,
    /// 1011: an internal error.
    Internal,
    /// 1013: try again later: the consumer fell too far behind (slow consumer).
    TryAgainLater,
}

impl CloseCode {
    /// Every close code, in numeric order.
    pub const ALL: [CloseCode; 8] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::Unsupported,
        CloseCode::InvalidPayload,
        CloseCode::Policy,
        CloseCode::TooBig,
        CloseCode::Internal,
        CloseCode::TryAgainLater,
    ];

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::Unsupported => 1003,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Internal => 1011,
            CloseCode::TryAgainLater => 1013,
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> u16 {
        c.as_u16()
    }
}

impl TryFrom<u16> for CloseCode {
    type Error = String;
    fn try_from(v: u16) -> Result<Self, String> {
        CloseCode::ALL
            .into_iter()
            .find(|c| c.as_u16() == v)
            .ok_or_else(|| format!("unknown close code {v}"))
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// The HTTP status of a refused handshake (docs/protocol.md section 8). Authentication happens
/// before the upgrade, so a refusal is always an HTTP response, never a WebSocket close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "u16", try_from = "u16")]
pub enum HttpStatus {
    /// 400: not a WebSocket request for `/ws`, or a malformed credential container.
    BadRequest,
    /// 401: missing, bad, expired or revoked credential.
    Unauthorized,
    /// 403: origin not allowed, or a permission is missing.
    Forbidden,
    /// 404: not the gateway's path.
    NotFound,
    /// 429: over the per-user connection cap or the per-IP handshake rate.
    TooManyRequests,
    /// 503: the revocation view is stale; retryable.
    ServiceUnavailable,
}

impl HttpStatus {
    /// The numeric status.
    pub const fn as_u16(self) -> u16 {
        match self {
            HttpStatus::BadRequest => 400,
            HttpStatus::Unauthorized => 401,
            HttpStatus::Forbidden => 403,
            HttpStatus::NotFound => 404,
            HttpStatus::TooManyRequests => 429,
            HttpStatus::ServiceUnavailable => 503,
        }
    }
}

impl From<HttpStatus> for u16 {
    fn from(s: HttpStatus) -> u16 {
        s.as_u16()
    }
}

impl TryFrom<u16> for HttpStatus {
    type Error = String;
    fn try_from(v: u16) -> Result<Self, String> {
        [
            HttpStatus::BadRequest,
            HttpStatus::Unauthorized,
            HttpStatus::Forbidden,
            HttpStatus::NotFound,
            HttpStatus::TooManyRequests,
            HttpStatus::ServiceUnavailable,
        ]
        .into_iter()
        .find(|s| s.as_u16() == v)
        .ok_or_else(|| format!("unknown http status {v}"))
    }
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// The `code` of an `error` frame. The connection stays open unless a close follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Invalid JSON or a schema mismatch. Counts against the protocol-error budget.
    BadMessage,
    /// An inbound `type` the gateway does not know. Counts against the protocol-error budget.
    UnknownType,
    /// The sender may not do this to that object (another user's run or thread, or a missing permission).
    Forbidden,
    /// The named run or thread does not exist.
    NotFound,
    /// Over the per-user message rate; `retry_after_ms` says when to retry.
    RateLimited,
    /// `resume` asked for events older than the outbox retains; the message names the oldest seq kept.
    ResumeGap,
    /// The revocation view is stale; `reauth` cannot be checked now. Retryable.
    AuthUnavailable,
    /// `reauth` carried a token that did not validate or named another user.
    AuthFailed,
    /// A per-user bound (threads, active runs) is reached.
    LimitExceeded,
}

impl ErrorCode {
    /// Whether a client may retry the same request later.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited | ErrorCode::AuthUnavailable | ErrorCode::LimitExceeded
        )
    }

    /// Whether this error counts against the connection's protocol-error budget.
    pub const fn counts_as_protocol_error(self) -> bool {
        matches!(
            self,
            ErrorCode::BadMessage
                | ErrorCode::UnknownType
                | ErrorCode::RateLimited
                | ErrorCode::Forbidden
        )
    }

    /// The wire spelling, e.g. `BAD_MESSAGE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "BAD_MESSAGE",
            ErrorCode::UnknownType => "UNKNOWN_TYPE",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ResumeGap => "RESUME_GAP",
            ErrorCode::AuthUnavailable => "AUTH_UNAVAILABLE",
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_round_trip_through_u16() {
        let nums: Vec<u16> = CloseCode::ALL.iter().map(|c| c.as_u16()).collect();
        assert_eq!(nums, vec![1000, 1001, 1003, 1007, 1008, 1009, 1011, 1013]);
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::try_from(c.as_u16()), Ok(c));
        }
        assert!(CloseCode::try_from(1002).is_err());
    }

    #[test]
    fn error_codes_serialize_screaming_snake() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::ResumeGap).ok().as_deref(),
            Some("\"RESUME_GAP\"")
        );
        assert_eq!(ErrorCode::AuthUnavailable.as_str(), "AUTH_UNAVAILABLE");
        assert!(ErrorCode::RateLimited.retryable() && !ErrorCode::Forbidden.retryable());
    }

    #[test]
    fn close_code_unknown_number_is_refused_with_its_value() {
        assert_eq!(
            CloseCode::try_from(1002),
            Err("unknown close code 1002".to_owned())
        );
    }

    #[test]
    fn close_code_display_and_u16_are_the_number() {
        for c in CloseCode::ALL {
            assert_eq!(c.to_string(), c.as_u16().to_string());
            assert_eq!(u16::from(c), c.as_u16());
        }
        assert_eq!(CloseCode::TryAgainLater.to_string(), "1013");
    }

    #[test]
    fn close_code_serde_is_the_number_and_refuses_unknown() {
        assert_eq!(
            serde_json::to_string(&CloseCode::Policy).ok().as_deref(),
            Some("1008")
        );
        assert_eq!(
            serde_json::from_str::<CloseCode>("1009").ok(),
            Some(CloseCode::TooBig)
        );
        assert!(serde_json::from_str::<CloseCode>("1004").is_err());
    }

    const STATUSES: [(HttpStatus, u16); 6] = [
        (HttpStatus::BadRequest, 400),
        (HttpStatus::Unauthorized, 401),
        (HttpStatus::Forbidden, 403),
        (HttpStatus::NotFound, 404),
        (HttpStatus::TooManyRequests, 429),
        (HttpStatus::ServiceUnavailable, 503),
    ];

    #[test]
    fn http_status_each_variant_round_trips_through_its_number() {
        for (s, n) in STATUSES {
            assert_eq!(s.as_u16(), n, "{s:?}");
            assert_eq!(u16::from(s), n, "{s:?}");
            assert_eq!(s.to_string(), n.to_string(), "{s:?}");
            assert_eq!(HttpStatus::try_from(n), Ok(s));
        }
    }

    #[test]
    fn http_status_unknown_number_is_refused_with_its_value() {
        assert_eq!(
            HttpStatus::try_from(500),
            Err("unknown http status 500".to_owned())
        );
    }

    #[test]
    fn http_status_serde_is_the_number_and_refuses_unknown() {
        assert_eq!(
            serde_json::to_string(&HttpStatus::TooManyRequests)
                .ok()
                .as_deref(),
            Some("429")
        );
        assert_eq!(
            serde_json::from_str::<HttpStatus>("503").ok(),
            Some(HttpStatus::ServiceUnavailable)
        );
        assert!(serde_json::from_str::<HttpStatus>("200").is_err());
    }

    /// Every error code with its wire spelling, whether it is retryable, and whether it
    /// counts against the protocol-error budget.
    const ERROR_CODES: [(ErrorCode, &str, bool, bool); 9] = [
        (ErrorCode::BadMessage, "BAD_MESSAGE", false, true),
        (ErrorCode::UnknownType, "UNKNOWN_TYPE", false, true),
        (ErrorCode::Forbidden, "FORBIDDEN", false, true),
        (ErrorCode::NotFound, "NOT_FOUND", false, false),
        (ErrorCode::RateLimited, "RATE_LIMITED", true, true),
        (ErrorCode::ResumeGap, "RESUME_GAP", false, false),
        (ErrorCode::AuthUnavailable, "AUTH_UNAVAILABLE", true, false),
        (ErrorCode::AuthFailed, "AUTH_FAILED", false, false),
        (ErrorCode::LimitExceeded, "LIMIT_EXCEEDED", true, false),
    ];

    #[test]
    fn error_code_each_variant_has_its_spelling_and_flags() {
        for (code, text, retryable, protocol_error) in ERROR_CODES {
            assert_eq!(code.as_str(), text, "{code:?}");
            assert_eq!(code.to_string(), text, "{code:?}");
            assert_eq!(
                serde_json::to_string(&code).ok(),
                Some(format!("\"{text}\"")),
                "{code:?}"
            );
            assert_eq!(code.retryable(), retryable, "{code:?}");
            assert_eq!(code.counts_as_protocol_error(), protocol_error, "{code:?}");
        }
    }
}
