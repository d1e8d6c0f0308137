//! The WebSocket upgrade request as the gateway sees it, and credential extraction in the
//! order docs/protocol.md section 8 fixes: `Authorization: Bearer`, then a `jwt.<base64url>`
//! subprotocol (offered beside `jwt`, rule `WS-SUBPROTO-JWT-REQUIRED`), then `?ticket=`, then
//! `?token=` (only when enabled).
//!
//! This module only finds and decodes the credential; validating it is the token module's job.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Most headers a handshake may carry.
pub const MAX_HEADERS: usize = 64;
/// Most bytes of header names + values + query a handshake may carry.
pub const MAX_HANDSHAKE_BYTES: usize = 16 * 1024;
/// The subprotocol prefix that carries a token.
pub(crate) const JWT_SUBPROTOCOL_PREFIX: &str = "jwt.";
/// The subprotocol the server selects when the token came in one; a client must offer it
/// beside `jwt.<token>` (RFC 6455 section 4.1: a client fails the connection when the server
/// selects a value it did not offer).
pub const JWT_SUBPROTOCOL: &str = "jwt";
/// The refusal code (HTTP 400) of a `jwt.<token>` offered without `jwt` beside it.
pub const JWT_SUBPROTOCOL_REQUIRED: &str = "jwt_subprotocol_required";
/// What the body of that refusal tells the client to do; it never contains the token.
pub const JWT_SUBPROTOCOL_REQUIRED_HINT: &str =
    "offer the subprotocol `jwt` beside `jwt.<base64url(token)>`: the server selects `jwt`";

/// An upgrade request: what a driver read off the HTTP request line and headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    /// The request path without the query, e.g. `/ws`.
    pub path: String,
    /// The raw query string without `?`, if any.
    pub query: Option<String>,
    /// Header (name, value) pairs in arrival order; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The peer's IP address (the per-IP handshake rate keys on it).
    pub peer: IpAddr,
}

/// Where the credential came from, with the token or ticket text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// A `jwt.<base64url(token)>` subprotocol (the token, decoded).
    Subprotocol(String),
    /// `?ticket=<t>`.
    Ticket(String),
    /// `?token=<t>`, only when the config enables it.
    QueryToken(String),
}

/// Why no usable credential could be extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No credential in any accepted place.
    #[error("no credential")]
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("authorization header is not a bearer token")]
    BadAuthorization,
    /// A `jwt.` subprotocol whose suffix is not base64url of UTF-8.
    #[error("jwt subprotocol is not base64url")]
    BadSubprotocol,
    /// A `jwt.<token>` subprotocol offered without `jwt` beside it: the server could select
    /// no offered value, so the client must add `jwt` to its offer.
    #[error("jwt.<token> subprotocol offered without jwt")]
    JwtSubprotocolNotOffered,
    /// `?token=` was used but the config does not allow it.
    #[error("query-string tokens are disabled")]
    QueryTokenDisabled,
    /// More headers or bytes than the gateway reads.
    #[error("handshake too large")]
    TooLarge,
}

impl HandshakeRequest {
    /// A request for `/ws` from `peer` with no headers.
    pub fn new(peer: IpAddr) -> Self {
        Self {
            path: "/ws".into(),
            query: None,
            headers: Vec::new(),
            peer,
        }
    }

    /// Adds a header (builder style).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the query string (builder style).
    #[must_use]
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = Some(query.to_string());
        self
    }

    /// Whether the request is within the header-count and size bounds.
    pub fn within_bounds(&self) -> bool {
        let bytes: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
            + self.query.as_ref().map_or(0, String::len)
            + self.path.len();
        self.headers.len() <= MAX_HEADERS && bytes <= MAX_HANDSHAKE_BYTES
    }

    /// The first header named `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `key` (no percent-decoding: tokens and tickets are URL-safe).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// Every offered subprotocol, across all `Sec-WebSocket-Protocol` headers.
    pub fn subprotocols(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The credential, looked up in protocol order.
    pub fn credential(&self, allow_query_token: bool) -> Result<Credential, CredentialError> {
        if !self.within_bounds() {
            return Err(CredentialError::TooLarge);
        }
        if let Some(auth) = self.header_value("authorization") {
            let (scheme, token) = auth
                .trim()
                .split_once(' ')
                .ok_or(CredentialError::BadAuthorization)?;
            let token = token.trim();
            if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
                return Err(CredentialError::BadAuthorization);
            }
            return Ok(Credential::Bearer(token.to_string()));
        }
        if let Some(encoded) = self
            .subprotocols()
            .find_map(|p| p.strip_prefix(JWT_SUBPROTOCOL_PREFIX))
        {
            // Checked before decoding: the fix is the same whatever the suffix holds.
            if !self.subprotocols().any(|p| p == JWT_SUBPROTOCOL) {
                return Err(CredentialError::JwtSubprotocolNotOffered);
            }
            let bytes = URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| CredentialError::BadSubprotocol)?;
            let token = String::from_utf8(bytes).map_err(|_| CredentialError::BadSubprotocol)?;
            return Ok(Credential::Subprotocol(token));
        }
        if let Some(ticket) = self.query_param("ticket") {
            return Ok(Credential::Ticket(ticket.to_string()));
        }
        if let Some(token) = self.query_param("token") {
            return if allow_query_token {
                Ok(Credential::QueryToken(token.to_string()))
            } else {
                Err(CredentialError::QueryTokenDisabled)
            };
        }
        Err(CredentialError::Missing)
    }
}

/// Encodes a token as a `jwt.<base64url>` subprotocol value (one entry of an offer; see
/// [`token_subprotocols`] for the whole offer).
pub fn token_subprotocol(token: &str) -> String {
    format!("{JWT_SUBPROTOCOL_PREFIX}{}", URL_SAFE_NO_PAD.encode(token))
}

/// The `Sec-WebSocket-Protocol` offer a client sends to authenticate with `token`:
/// `jwt, jwt.<base64url(token)>`, so the server has an offered value (`jwt`) to select.
pub fn token_subprotocols(token: &str) -> String {
    format!("{JWT_SUBPROTOCOL}, {}", token_subprotocol(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn req() -> HandshakeRequest {
        HandshakeRequest::new(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    #[test]
    fn bearer_wins_over_every_other_place() {
        let r = req()
            .header("AUTHORIZATION", "Bearer aaa")
            .header("Sec-WebSocket-Protocol", &token_subprotocol("bbb"))
            .with_query("ticket=ccc&token=ddd");
        assert_eq!(r.credential(true), Ok(Credential::Bearer("aaa".into())));
    }

    #[test]
    fn subprotocol_then_ticket_then_query_token() {
        let sub = req()
            .header(
                "sec-websocket-protocol",
                &format!("chat, {}", token_subprotocols("tok")),
            )
            .with_query("ticket=t");
        assert_eq!(
            sub.credential(false),
            Ok(Credential::Subprotocol("tok".into()))
        );
        assert_eq!(
            req().with_query("a=1&ticket=t1").credential(false),
            Ok(Credential::Ticket("t1".into()))
        );
        assert_eq!(
            req().with_query("token=x").credential(true),
            Ok(Credential::QueryToken("x".into()))
        );
        assert_eq!(
            req().with_query("token=x").credential(false),
            Err(CredentialError::QueryTokenDisabled)
        );
        assert_eq!(req().credential(true), Err(CredentialError::Missing));
    }

    #[test]
    fn token_subprotocol_without_jwt_is_refused() {
        let alone = req().header("Sec-WebSocket-Protocol", &token_subprotocol("tok"));
        assert_eq!(
            alone.credential(false),
            Err(CredentialError::JwtSubprotocolNotOffered)
        );
        // `jwt` may come in another header, and any order; a look-alike does not count.
        let split = req()
            .header("Sec-WebSocket-Protocol", &token_subprotocol("tok"))
            .header("sec-websocket-protocol", "chat,jwt");
        assert_eq!(
            split.credential(false),
            Ok(Credential::Subprotocol("tok".into()))
        );
        let lookalike = req().header(
            "Sec-WebSocket-Protocol",
            &format!("jwtx, JWT, {}", token_subprotocol("tok")),
        );
        assert_eq!(
            lookalike.credential(false),
            Err(CredentialError::JwtSubprotocolNotOffered)
        );
        // An undecodable suffix without `jwt` gets the same answer: add `jwt`.
        assert_eq!(
            req()
                .header("Sec-WebSocket-Protocol", "jwt.!!!")
                .credential(false),
            Err(CredentialError::JwtSubprotocolNotOffered)
        );
        // `jwt` alone is not a credential.
        assert_eq!(
            req()
                .header("Sec-WebSocket-Protocol", "jwt")
                .credential(false),
            Err(CredentialError::Missing)
        );
    }

    #[test]
    fn malformed_credentials_are_typed_errors() {
        assert_eq!(
            req().header("Authorization", "Basic abc").credential(false),
            Err(CredentialError::BadAuthorization)
        );
        assert_eq!(
            req().header("Authorization", "Bearer").credential(false),
            Err(CredentialError::BadAuthorization)
        );
        assert_eq!(
            req()
                .header("Sec-WebSocket-Protocol", "jwt, jwt.!!!")
                .credential(false),
            Err(CredentialError::BadSubprotocol)
        );
        let mut big = req();
        for i in 0..=MAX_HEADERS {
            big = big.header(&format!("x-{i}"), "v");
        }
        assert_eq!(big.credential(false), Err(CredentialError::TooLarge));
    }
}
