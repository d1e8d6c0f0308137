//! Admission: who may connect and with what. The handshake (credential, origin, per-IP
//! rate, per-user cap, revocation freshness) is decided here before any upgrade, single-use
//! tickets are issued and redeemed here, and the auth service's revocation feed lands here
//! (closing what it revokes).
//!
//! It must never accept a socket and authenticate it later: every refusal is an HTTP answer.

use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::config::Limits;
use crate::error::HttpStatus;
use crate::ids::{ConnId, Seq, UserId};
use crate::log::{CloseReason, CredentialKind, Event, Identity};
use crate::plant::planted;
use crate::protocol::{
    Credential, CredentialError, HandshakeRequest, JWT_SUBPROTOCOL, JWT_SUBPROTOCOL_REQUIRED,
    ServerFrame,
};
use crate::ratelimit::TokenBucket;
use crate::session::LiveConn;
use crate::state::hex;
use crate::time::Instant;
use crate::token::{Claims, Revocation, TokenError, TokenType};

use super::timers::millis;
use super::{Ctx, Gateway, HandshakeDecision, IssuedTicket, TicketRefusal, TimerKind};

impl Gateway {
    pub(super) fn feed_is_fresh(&self, now: Instant) -> bool {
        let max = Limits::ms(self.config.limits.max_revocation_staleness_ms);
        let fresh = self
            .state
            .feed_as_of
            .is_some_and(|as_of| now.saturating_since(as_of) <= max);
        fresh || planted!(self.plants, RevocationFailOpen)
    }

    pub(super) fn handshake(
        &mut self,
        ctx: &mut Ctx,
        conn: ConnId,
        req: &HandshakeRequest,
    ) -> HandshakeDecision {
        let reject = |status, code| HandshakeDecision::Reject {
            status,
            code,
            retry_after_ms: None,
        };
        if req.path != "/ws" {
            return reject(HttpStatus::NotFound, "not_found");
        }
        if !req.within_bounds() {
            return reject(HttpStatus::BadRequest, "handshake_too_large");
        }
        if self.state.sessions.contains_key(&conn) {
            return reject(HttpStatus::BadRequest, "duplicate_connection_id");
        }
        if let Err(wait) = self.take_ip_token(ctx.now, req.peer) {
            return HandshakeDecision::Reject {
                status: HttpStatus::TooManyRequests,
                code: "ip_rate_limited",
                retry_after_ms: Some(millis(wait)),
            };
        }
        let allow = &self.config.limits.origin_allow_list;
        let prefix = planted!(self.plants, OriginPrefixMatch);
        if !allow.is_empty()
            && !req
                .header_value("origin")
                .is_some_and(|o| allow.iter().any(|a| a == o || (prefix && o.starts_with(a))))
        {
            return reject(HttpStatus::Forbidden, "origin_not_allowed");
        }
        let credential = match req.credential(self.config.limits.allow_query_token) {
            Ok(c) => c,
            Err(CredentialError::TooLarge) => {
                return reject(HttpStatus::BadRequest, "handshake_too_large");
            }
            Err(CredentialError::Missing) => {
                return reject(HttpStatus::Unauthorized, "missing_credential");
            }
            Err(CredentialError::BadAuthorization) => {
                return reject(HttpStatus::Unauthorized, "bad_authorization");
            }
            Err(CredentialError::BadSubprotocol) => {
                return reject(HttpStatus::Unauthorized, "bad_subprotocol");
            }
            Err(CredentialError::JwtSubprotocolNotOffered) => {
                // `WS-SUBPROTO-JWT-REQUIRED`: selecting `jwt` here would make a standard
                // client fail the connection, so say what to offer instead.
                return reject(HttpStatus::BadRequest, JWT_SUBPROTOCOL_REQUIRED);
            }
            Err(CredentialError::QueryTokenDisabled) => {
                return reject(HttpStatus::Unauthorized, "query_token_disabled");
            }
        };
        if !self.feed_is_fresh(ctx.now) {
            return HandshakeDecision::Reject {
                status: HttpStatus::ServiceUnavailable,
                code: "auth_unavailable",
                retry_after_ms: Some(1000),
            };
        }
        let (identity, via) = match self.authenticate(ctx, &credential) {
            Ok(found) => found,
            Err(code) => return reject(HttpStatus::Unauthorized, code),
        };
        let held = self
            .state
            .cap_slots
            .get(&identity.user)
            .copied()
            .unwrap_or(0);
        if held >= self.config.limits.max_connections_per_user {
            return HandshakeDecision::Reject {
                status: HttpStatus::TooManyRequests,
                code: "too_many_connections",
                retry_after_ms: Some(1000),
            };
        }
        if self.state.sessions.len() >= self.config.limits.max_connections {
            return HandshakeDecision::Reject {
                status: HttpStatus::TooManyRequests,
                code: "server_full",
                retry_after_ms: Some(1000),
            };
        }
        let user = identity.user.clone();
        let expiry = identity.exp.saturating_add(self.leeway());
        self.emit(
            ctx,
            Event::SessionOpened {
                conn,
                identity,
                via,
                peer: req.peer,
            },
        );
        let live_from = self
            .state
            .sessions
            .get(&conn)
            .map_or(Seq::new(1), |s| s.live_from);
        self.live.insert(conn, LiveConn::new(live_from));
        self.timers.set(TimerKind::Expiry(conn), expiry);
        self.user_buckets
            .entry(user.clone())
            .or_insert_with(|| TokenBucket::new(self.config.limits.user_rate, ctx.now));
        self.send_direct(
            ctx,
            conn,
            &ServerFrame::ConnectionEstablished {
                user_id: user.clone(),
                connection_id: conn,
                latest_seq: self.state.latest_seq(&user),
                critical_events: crate::protocol::CRITICAL_EVENTS,
            },
        );
        let subprotocol = (via == CredentialKind::Subprotocol).then_some(JWT_SUBPROTOCOL);
        HandshakeDecision::Accept { user, subprotocol }
    }

    pub(super) fn take_ip_token(&mut self, now: Instant, ip: IpAddr) -> Result<(), Duration> {
        let r = self.ip_buckets.charge(now, ip);
        self.arm_sweep(now);
        r
    }

    pub(super) fn authenticate(
        &mut self,
        ctx: &mut Ctx,
        credential: &Credential,
    ) -> Result<(Identity, CredentialKind), &'static str> {
        let (token, via) = match credential {
            Credential::Bearer(t) => (t, CredentialKind::Bearer),
            Credential::Subprotocol(t) => (t, CredentialKind::Subprotocol),
            Credential::QueryToken(t) => (t, CredentialKind::QueryToken),
            Credential::Ticket(ticket) => {
                return self
                    .redeem_ticket(ctx, ticket)
                    .map(|i| (i, CredentialKind::Ticket));
            }
        };
        let claims = self
            .validator
            .validate(token.as_bytes(), ctx.now, TokenType::Access)
            .map_err(|e| e.code())?;
        Ok((identity_of(&claims), via))
    }

    pub(super) fn redeem_ticket(
        &mut self,
        ctx: &mut Ctx,
        ticket: &str,
    ) -> Result<Identity, &'static str> {
        let digest = hex(&Sha256::digest(ticket.as_bytes()));
        let record = self
            .state
            .tickets
            .get(&digest)
            .cloned()
            .ok_or("unknown_ticket")?;
        if !planted!(self.plants, TicketReusable) {
            self.emit(ctx, Event::TicketConsumed { digest });
        }
        if ctx.now >= record.expires {
            return Err("ticket_expired");
        }
        if ctx.now >= record.identity.exp.saturating_add(self.leeway()) {
            return Err(TokenError::Expired.code());
        }
        if self.identity_revoked(&record.identity) {
            return Err("revoked");
        }
        Ok(record.identity)
    }

    /// The user's tickets that are unredeemed and not yet expired at `now`.
    pub(super) fn live_tickets_of(&self, user: &UserId, now: Instant) -> usize {
        self.state.tickets_by_user.get(user).map_or(0, |held| {
            held.iter()
                .filter(|d| self.state.tickets.get(*d).is_some_and(|t| now < t.expires))
                .count()
        })
    }

    pub(super) fn identity_revoked(&self, id: &Identity) -> bool {
        self.validator
            .is_revoked_identity(&id.jti, &id.user, id.iat)
    }

    pub(super) fn issue_ticket(
        &mut self,
        ctx: &mut Ctx,
        authorization: Option<&str>,
    ) -> Result<IssuedTicket, TicketRefusal> {
        let refuse = |status, code| TicketRefusal { status, code };
        let token = authorization
            .and_then(|a| a.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or(refuse(HttpStatus::Unauthorized, "missing_credential"))?;
        if !self.feed_is_fresh(ctx.now) {
            return Err(refuse(HttpStatus::ServiceUnavailable, "auth_unavailable"));
        }
        let claims = self
            .validator
            .validate(token.as_bytes(), ctx.now, TokenType::Access)
            .map_err(|e| refuse(HttpStatus::Unauthorized, e.code()))?;
        if self.state.tickets.len() >= self.config.limits.max_tickets {
            return Err(refuse(HttpStatus::TooManyRequests, "too_many_tickets"));
        }
        // Per user, only tickets that could still be redeemed count: expired ones wait for
        // the sweep but no longer hold a place. Without this bound one user could take the
        // whole store and every other user would get 429 (the `TicketsUnboundedPerUser`
        // planted bug).
        if !planted!(self.plants, TicketsUnboundedPerUser)
            && self.live_tickets_of(claims.sub(), ctx.now)
                >= self.config.limits.max_tickets_per_user
        {
            return Err(refuse(
                HttpStatus::TooManyRequests,
                "too_many_tickets_per_user",
            ));
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.ticket_key)
            .map_err(|_| refuse(HttpStatus::ServiceUnavailable, "ticket_key"))?;
        mac.update(&self.state.tickets_issued.to_le_bytes());
        let tag = mac.finalize().into_bytes();
        let ticket = hex(tag.get(..16).unwrap_or(&tag));
        let digest = hex(&Sha256::digest(ticket.as_bytes()));
        let expires = ctx
            .now
            .saturating_add(Limits::ms(self.config.limits.ticket_ttl_ms));
        self.emit(
            ctx,
            Event::TicketIssued {
                digest,
                identity: identity_of(&claims),
                expires,
            },
        );
        self.arm_sweep(ctx.now);
        Ok(IssuedTicket { ticket, expires })
    }

    pub(crate) fn validate_access(
        &mut self,
        token: &str,
        now: Instant,
    ) -> Result<Identity, TokenError> {
        self.validator
            .validate(token.as_bytes(), now, TokenType::Access)
            .map(|c| identity_of(&c))
    }

    pub(super) fn on_feed(&mut self, ctx: &mut Ctx, as_of: Instant, revocations: Vec<Revocation>) {
        let newer = self.state.feed_as_of.is_none_or(|old| as_of > old);
        if !newer && revocations.is_empty() {
            return;
        }
        // Only a new revocation can end a session (each was checked when it opened or
        // reauthenticated), and only the sessions of the revoked token or user.
        let mut candidates: Vec<ConnId> = revocations
            .iter()
            .filter_map(|r| match r {
                Revocation::Jti { jti, .. } => self.state.by_jti.get(jti),
                Revocation::User { user, .. } => self.state.by_user.get(user),
            })
            .flatten()
            .copied()
            .collect();
        self.emit(ctx, Event::FeedSynced { as_of, revocations });
        candidates.sort_unstable();
        candidates.dedup();
        let revoked: Vec<ConnId> = candidates
            .into_iter()
            .filter(|c| {
                self.state
                    .sessions
                    .get(c)
                    .is_some_and(|s| self.identity_revoked(&s.identity))
            })
            .collect();
        for conn in revoked {
            self.close(ctx, conn, CloseReason::TokenRevoked);
        }
    }
}

/// The fields of validated claims a session keeps.
pub(super) fn identity_of(claims: &Claims) -> Identity {
    Identity {
        user: claims.sub().clone(),
        jti: claims.jti().clone(),
        iat: claims.iat(),
        exp: claims.exp(),
        can_broadcast: claims.permissions().allows("system:broadcast"),
    }
}
