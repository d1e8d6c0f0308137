//! The wire protocol (docs/protocol.md section 9): inbound envelopes and their decoding, outbound
//! frames and their encoding, and the handshake request.
//!
//! Decoding is the first thing untrusted bytes meet, so it returns a typed
//! [`ProtocolError`] for every bad input and never panics or allocates without bound (the
//! frame-size limit is enforced by the gateway before decoding starts). A client-supplied
//! `user_id` is never read: the envelope types have no such field, and identity comes only
//! from the connection's token.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod frame;
mod handshake;
mod wire;

pub(crate) use frame::render_ack_into;
pub use frame::{
    CRITICAL_EVENTS, ClientFrame, Inbound, ProtocolError, ServerFrame, StreamKind, decode_inbound,
};
pub use handshake::{
    Credential, CredentialError, HandshakeRequest, JWT_SUBPROTOCOL, JWT_SUBPROTOCOL_REQUIRED,
    JWT_SUBPROTOCOL_REQUIRED_HINT, MAX_HANDSHAKE_BYTES, MAX_HEADERS, token_subprotocol,
    token_subprotocols,
};
pub use wire::WireFrame;
