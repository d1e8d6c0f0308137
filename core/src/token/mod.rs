//! Tokens: JWS compact parsing, the key ring, claim rules, revocation, the validation
//! cache, refresh rotation and issuing (PROTOCOL.md section 1).
