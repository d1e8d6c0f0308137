//! `TokenRules`: the configurable numbers of docs/protocol.md section 1 (issuer, audiences,
//! leeway, lifetimes per environment, size limits). Plain data with serde defaults; it must
//! never read the environment or a clock itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::claims::TokenType;

/// The deployment environment, which picks the token lifetimes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production (the default): 15 min access, 7 d refresh.
    #[default]
    Prod,
    /// Staging: 30 min access, 14 d refresh.
    Staging,
    /// Development: 120 min access, 30 d refresh.
    Dev,
    /// Tests: 5 min access, 1 d refresh.
    Test,
}

/// Access and refresh token lifetimes for one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetimes {
    /// Access (and service) token lifetime, in seconds.
    pub access_secs: u64,
    /// Refresh token lifetime, in seconds.
    pub refresh_secs: u64,
}

impl Lifetimes {
    const fn minutes_days(access_min: u64, refresh_days: u64) -> Self {
        Self {
            access_secs: access_min * 60,
            refresh_secs: refresh_days * 86_400,
        }
    }
}

/// Lifetimes for each environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifetimeTable {
    /// Production lifetimes.
    pub prod: Lifetimes,
    /// Staging lifetimes.
    pub staging: Lifetimes,
    /// Development lifetimes.
    pub dev: Lifetimes,
    /// Test lifetimes.
    pub test: Lifetimes,
}

impl Default for LifetimeTable {
    fn default() -> Self {
        Self {
            prod: Lifetimes::minutes_days(15, 7),
            staging: Lifetimes::minutes_days(30, 14),
            dev: Lifetimes::minutes_days(120, 30),
            test: Lifetimes::minutes_days(5, 1),
        }
    }
}

/// The rules every token must satisfy. `Default` is docs/protocol.md's defaults (environment
/// `prod`); deserializing fills any missing field with its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRules {
    /// Required `iss`.
    pub issuer: String,
    /// Audience access and refresh tokens must carry.
    pub user_audience: String,
    /// Audience service tokens must carry.
    pub service_audience: String,
    /// Clock-skew allowance for `exp`, `nbf` and the lifetime cap, in seconds.
    pub leeway_secs: u64,
    /// How far in the future `iat` may be, in seconds.
    pub max_iat_future_secs: u64,
    /// Longest token accepted, in bytes, checked before any decoding.
    pub max_len: usize,
    /// Which lifetimes apply.
    pub environment: Environment,
    /// Lifetimes per environment.
    pub lifetimes: LifetimeTable,
}

impl Default for TokenRules {
    fn default() -> Self {
        Self {
            issuer: "gauntlet-auth".to_string(),
            user_audience: "gauntlet-gateway".to_string(),
            service_audience: "gauntlet-services".to_string(),
            leeway_secs: 30,
            max_iat_future_secs: 60,
            max_len: 4096,
            environment: Environment::Prod,
            lifetimes: LifetimeTable::default(),
        }
    }
}

impl TokenRules {
    /// The audience a token of type `ty` must carry.
    pub fn audience_for(&self, ty: TokenType) -> &str {
        match ty {
            TokenType::Access | TokenType::Refresh => &self.user_audience,
            TokenType::Service => &self.service_audience,
        }
    }

    /// The lifetime of a token of type `ty` in the configured environment. Service tokens
    /// live as long as access tokens: both are short-lived bearer credentials.
    pub fn lifetime_for(&self, ty: TokenType) -> Duration {
        let l = match self.environment {
            Environment::Prod => self.lifetimes.prod,
            Environment::Staging => self.lifetimes.staging,
            Environment::Dev => self.lifetimes.dev,
            Environment::Test => self.lifetimes.test,
        };
        Duration::from_secs(match ty {
            TokenType::Access | TokenType::Service => l.access_secs,
            TokenType::Refresh => l.refresh_secs,
        })
    }

    /// The leeway as a duration.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.leeway_secs)
    }

    /// The `iat` future allowance as a duration.
    pub fn max_iat_future(&self) -> Duration {
        Duration::from_secs(self.max_iat_future_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_partial_json_keeps_protocol_defaults() {
        let r: TokenRules =
            serde_json::from_str(r#"{"environment":"test","leeway_secs":5}"#).unwrap();
        assert_eq!(r.leeway_secs, 5);
        assert_eq!(r.issuer, "gauntlet-auth");
        assert_eq!(r.max_len, 4096);
        assert_eq!(r.lifetime_for(TokenType::Access), Duration::from_secs(300));
        assert_eq!(
            r.lifetime_for(TokenType::Refresh),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn rules_staging_and_dev_lifetimes_come_from_their_table_rows() {
        let staging = TokenRules {
            environment: Environment::Staging,
            ..TokenRules::default()
        };
        assert_eq!(
            staging.lifetime_for(TokenType::Access),
            Duration::from_secs(30 * 60)
        );
        assert_eq!(
            staging.lifetime_for(TokenType::Refresh),
            Duration::from_secs(14 * 86_400)
        );
        let dev = TokenRules {
            environment: Environment::Dev,
            ..TokenRules::default()
        };
        assert_eq!(
            dev.lifetime_for(TokenType::Access),
            Duration::from_secs(120 * 60)
        );
        assert_eq!(
            dev.lifetime_for(TokenType::Refresh),
            Duration::from_secs(30 * 86_400)
        );
    }

    #[test]
    fn rules_default_prod_lifetimes_match_protocol() {
        let r = TokenRules::default();
        assert_eq!(
            r.lifetime_for(TokenType::Access),
            Duration::from_secs(15 * 60)
        );
        assert_eq!(
            r.lifetime_for(TokenType::Service),
            Duration::from_secs(15 * 60)
        );
        assert_eq!(
            r.lifetime_for(TokenType::Refresh),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(r.audience_for(TokenType::Service), "gauntlet-services");
        assert_eq!(r.audience_for(TokenType::Refresh), "gauntlet-gateway");
    }
}
