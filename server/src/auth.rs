//! API keys: authentication, scopes and per-key rate limits.
//!
//! Keys live in the config file as the SHA-256 of their secret (never the
//! secret itself). A caller sends `authorization: Bearer <secret>`; the
//! gateway hashes it and compares it with every configured hash in constant
//! time. A key's scopes limit the targets, namespaces and RPCs it may use.
//! Over mTLS, a key may instead match the client certificate's subject.

use std::{num::NonZeroU32, sync::Arc};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::error::Error;

/// The RPC names scopes may list.
pub const RPCS: &[&str] = &[
    "Emit",
    "Broadcast",
    "BatchEmit",
    "SocketsJoin",
    "SocketsLeave",
    "DisconnectSockets",
    "ServerSideEmit",
    "EmitWithAck",
    "FetchSockets",
    "AllRooms",
    "ServerCount",
    "ServerSideEmitWithAck",
];

/// Prefix of generated secrets, so that a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "egk_";

/// Random bytes in a generated secret: 256 bits.
const SECRET_BYTES: usize = 32;

/// One `[[auth.keys]]` entry of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// A name for logs, metrics and idempotency scoping.
    pub id: String,
    /// Hex SHA-256 of the secret (`emitgate keygen` prints it).
    pub secret_sha256: Option<String>,
    /// A client-certificate subject (e.g. `CN=billing`) that authenticates
    /// as this key over mTLS.
    pub client_subject: Option<String>,
    /// Targets the key may use: names, `prefix*` patterns or `*` (default).
    #[serde(default = "any")]
    pub targets: Vec<String>,
    /// Namespaces the key may use: names, `prefix*` patterns or `*` (default).
    #[serde(default = "any")]
    pub namespaces: Vec<String>,
    /// RPCs the key may call (see [`RPCS`]), or `*` (default).
    #[serde(default = "any")]
    pub rpcs: Vec<String>,
    /// Events per second this key may publish (a batch counts its items);
    /// unlimited when unset.
    pub rate_per_second: Option<u32>,
    /// Events the key may publish at once above its rate (default: one
    /// second's worth).
    pub burst: Option<u32>,
    /// Whether the key may use the admin console and its JSON API (default
    /// false). Events sent from the console still need the key's
    /// `targets`, `namespaces` and `rpcs` scopes.
    #[serde(default)]
    pub admin: bool,
}

fn any() -> Vec<String> {
    vec!["*".to_owned()]
}

/// One scope pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
    Prefix(String),
}

/// What a key may use, as a list of patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(Vec<Pattern>);

impl Scope {
    fn parse(items: &[String]) -> Self {
        Self(
            items
                .iter()
                .map(|p| match p.strip_suffix('*') {
                    Some("") => Pattern::Any,
                    Some(prefix) => Pattern::Prefix(prefix.to_owned()),
                    None => Pattern::Exact(p.clone()),
                })
                .collect(),
        )
    }

    /// Whether `name` is in scope.
    pub fn allows(&self, name: &str) -> bool {
        self.0.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Exact(e) => e == name,
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        })
    }
}

/// A configured API key.
pub struct ApiKey {
    /// Its id.
    pub id: String,
    hash: Option<[u8; 32]>,
    subject: Option<String>,
    /// Targets it may use.
    pub targets: Scope,
    /// Namespaces it may use.
    pub namespaces: Scope,
    /// RPCs it may call.
    pub rpcs: Scope,
    /// Whether it may use the admin console.
    pub admin: bool,
    limiter: Option<DefaultDirectRateLimiter>,
    burst: u32,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the hash: it is a credential's fingerprint.
        f.debug_struct("ApiKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl ApiKey {
    /// Takes `events` from the key's rate budget, or says how long to wait.
    pub fn take(&self, events: u32) -> Result<(), Error> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        let n = NonZeroU32::new(events.max(1)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Error::RateLimited {
                key: self.id.clone(),
                retry_after: not_until
                    .wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default())),
            }),
            // More events in one call than the burst can ever hold: no
            // retry delay would help, the call must be split.
            Err(_) => Err(Error::InvalidArgument(crate::error::Violations::one(
                crate::error::Violation::over(
                    "items",
                    format!(
                        "{events} events in one call, over the burst of API key {:?} ({}); split the call",
                        self.id, self.burst
                    ),
                    crate::error::Limit {
                        name: "burst",
                        value: u64::from(self.burst),
                    },
                ),
            ))),
        }
    }

    /// Checks that the key may call `rpc`.
    pub fn allow_rpc(&self, rpc: &str) -> Result<(), Error> {
        if self.rpcs.allows(rpc) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "API key {:?} may not call {rpc}",
                self.id
            )))
        }
    }

    /// Checks that the key may use the admin console.
    pub fn allow_admin(&self) -> Result<(), Error> {
        if self.admin {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "API key {:?} may not use the admin console (it needs `admin = true`)",
                self.id
            )))
        }
    }

    /// Checks that the key may publish to `target`, namespace `nsp`.
    pub fn allow(&self, target: &str, nsp: &str) -> Result<(), Error> {
        if !self.targets.allows(target) {
            return Err(Error::PermissionDenied(format!(
                "API key {:?} may not use target {target:?}",
                self.id
            )));
        }
        if !self.namespaces.allows(nsp) {
            return Err(Error::PermissionDenied(format!(
                "API key {:?} may not use namespace {nsp:?}",
                self.id
            )));
        }
        Ok(())
    }
}

/// The configured keys. With none, authentication is off (loopback only,
/// or with `--insecure-no-auth`).
#[derive(Debug, Default)]
pub struct KeyStore {
    keys: Vec<Arc<ApiKey>>,
}

impl KeyStore {
    /// Builds the store; the error names the bad entry.
    pub fn new(configs: &[KeyConfig]) -> Result<Self, (String, String)> {
        let mut keys = Vec::with_capacity(configs.len());
        for (i, k) in configs.iter().enumerate() {
            let at = |field: &str| format!("auth.keys[{i}].{field}");
            if k.id.is_empty() {
                return Err((at("id"), "must not be empty".into()));
            }
            if configs[..i].iter().any(|o| o.id == k.id) {
                return Err((at("id"), format!("duplicate key id {:?}", k.id)));
            }
            let hash = match &k.secret_sha256 {
                Some(h) => Some(parse_hash(h).ok_or_else(|| (at("secret_sha256"), "must be 64 hex digits".into()))?),
                None => None,
            };
            if hash.is_none() && k.client_subject.is_none() {
                return Err((
                    at("secret_sha256"),
                    "a key needs secret_sha256 or client_subject".into(),
                ));
            }
            if let Some(bad) = k.rpcs.iter().find(|r| *r != "*" && !RPCS.contains(&r.as_str())) {
                return Err((at("rpcs"), format!("unknown RPC {bad:?}; known: {}", RPCS.join(", "))));
            }
            let limiter = match k.rate_per_second {
                Some(0) => return Err((at("rate_per_second"), "must be greater than 0".into())),
                Some(rate) => {
                    let burst = k.burst.unwrap_or(rate);
                    let (Some(rate), Some(burst)) = (NonZeroU32::new(rate), NonZeroU32::new(burst)) else {
                        return Err((at("burst"), "must be greater than 0".into()));
                    };
                    Some(RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)))
                }
                None => None,
            };
            keys.push(Arc::new(ApiKey {
                id: k.id.clone(),
                hash,
                subject: k.client_subject.clone(),
                targets: Scope::parse(&k.targets),
                namespaces: Scope::parse(&k.namespaces),
                rpcs: Scope::parse(&k.rpcs),
                admin: k.admin,
                limiter,
                burst: k.burst.or(k.rate_per_second).unwrap_or(u32::MAX),
            }));
        }
        Ok(Self { keys })
    }

    /// Whether callers must authenticate.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller's key: from the bearer secret, else from the client
    /// certificate subjects. `Ok(None)` when authentication is off.
    pub fn authenticate(&self, metadata: &MetadataMap, subjects: &[String]) -> Result<Option<Arc<ApiKey>>, Error> {
        if !self.required() {
            return Ok(None);
        }
        if let Some(value) = metadata.get("authorization") {
            let secret = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .ok_or_else(|| Error::Unauthenticated("the authorization header must be `Bearer <key>`".into()))?;
            let digest: [u8; 32] = Sha256::digest(secret.trim().as_bytes()).into();
            // Compare with every key, without stopping early, so timing does
            // not reveal how many keys there are or which one nearly matched.
            let mut found = None;
            for key in &self.keys {
                if let Some(h) = &key.hash
                    && bool::from(h.ct_eq(&digest))
                {
                    found = Some(Arc::clone(key));
                }
            }
            return found
                .map(Some)
                .ok_or_else(|| Error::Unauthenticated("unknown API key".into()));
        }
        for key in &self.keys {
            if let Some(subject) = &key.subject
                && subjects.iter().any(|s| s == subject)
            {
                return Ok(Some(Arc::clone(key)));
            }
        }
        Err(Error::Unauthenticated(
            "missing API key: send `authorization: Bearer <key>`".into(),
        ))
    }
}

fn parse_hash(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    bytes.try_into().ok()
}

/// A new random secret and its SHA-256, as `emitgate keygen` prints them.
pub fn generate_secret() -> Result<(String, String), String> {
    let mut raw = [0u8; SECRET_BYTES];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
    let secret = format!("{SECRET_PREFIX}{}", hex::encode(raw));
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    Ok((secret, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            secret_sha256: Some(hex::encode(Sha256::digest(secret.as_bytes()))),
            client_subject: None,
            targets: vec!["default".into()],
            namespaces: vec!["/".into(), "/billing*".into()],
            rpcs: vec!["Emit".into()],
            rate_per_second: Some(10),
            burst: None,
            admin: false,
        }
    }

    fn meta(v: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", v.parse().unwrap());
        m
    }

    #[test]
    fn authenticates_by_bearer_secret() {
        let store = KeyStore::new(&[key("a", "s1"), key("b", "s2")]).unwrap();
        assert_eq!(store.authenticate(&meta("Bearer s2"), &[]).unwrap().unwrap().id, "b");
        assert!(matches!(
            store.authenticate(&meta("Bearer nope"), &[]),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            store.authenticate(&meta("Basic s1"), &[]),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            store.authenticate(&MetadataMap::new(), &[]),
            Err(Error::Unauthenticated(_))
        ));
        assert!(
            KeyStore::default()
                .authenticate(&MetadataMap::new(), &[])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn scopes() {
        let store = KeyStore::new(&[key("a", "s")]).unwrap();
        let k = store.authenticate(&meta("Bearer s"), &[]).unwrap().unwrap();
        assert!(k.allow_rpc("Emit").is_ok());
        assert!(
            matches!(k.allow_rpc("DisconnectSockets"), Err(Error::PermissionDenied(m)) if m.contains("DisconnectSockets"))
        );
        assert!(k.allow("default", "/billing/eu").is_ok());
        assert!(matches!(k.allow("eu", "/"), Err(Error::PermissionDenied(m)) if m.contains("\"eu\"")));
        assert!(matches!(k.allow("default", "/admin"), Err(Error::PermissionDenied(m)) if m.contains("/admin")));
        assert!(matches!(k.allow_admin(), Err(Error::PermissionDenied(m)) if m.contains("admin = true")));
    }

    #[test]
    fn the_admin_permission_is_off_unless_given() {
        let toml_key = |extra: &str| -> KeyConfig {
            toml::from_str(&format!("id = \"a\"\nsecret_sha256 = \"{}\"\n{extra}", "ab".repeat(32))).unwrap()
        };
        assert!(!toml_key("").admin, "`rpcs = [\"*\"]` must not grant the console");
        let mut admin = toml_key("admin = true");
        admin.secret_sha256 = Some(hex::encode(Sha256::digest(b"s")));
        let store = KeyStore::new(&[admin]).unwrap();
        let k = store.authenticate(&meta("Bearer s"), &[]).unwrap().unwrap();
        assert!(k.allow_admin().is_ok());
    }

    #[test]
    fn rate_limit_counts_events() {
        let store = KeyStore::new(&[key("a", "s")]).unwrap();
        let k = store.authenticate(&meta("Bearer s"), &[]).unwrap().unwrap();
        assert!(k.take(10).is_ok());
        assert!(matches!(k.take(1), Err(Error::RateLimited { .. })));
    }

    #[test]
    fn config_errors_name_the_entry() {
        let mut bad = key("a", "s");
        bad.rpcs = vec!["Emitt".into()];
        assert_eq!(KeyStore::new(&[bad]).unwrap_err().0, "auth.keys[0].rpcs");
        let mut bad = key("a", "s");
        bad.secret_sha256 = Some("xyz".into());
        assert_eq!(KeyStore::new(&[bad]).unwrap_err().0, "auth.keys[0].secret_sha256");
        assert_eq!(
            KeyStore::new(&[key("a", "s"), key("a", "t")]).unwrap_err().0,
            "auth.keys[1].id"
        );
    }

    #[test]
    fn generated_secrets_hash_to_their_config_line() {
        let (secret, hash) = generate_secret().unwrap();
        assert!(secret.starts_with(SECRET_PREFIX));
        assert_eq!(hex::encode(Sha256::digest(secret.as_bytes())), hash);
    }
}
