//! Who is calling and what they did: a use case between the HTTP edge (and the CLI) and the
//! store. [`Access`] resolves a bearer token to a [`Caller`] (the bootstrap `ADMIN_TOKEN`, or a
//! named user's token, looked up by its SHA-256), manages users and their tokens, records the
//! audit ([`audit`]), and holds the runtime feature flags ([`flags`]).
//!
//! May not import: `axum`, `sqlx`, `crate::http`, `crate::jobs`.

pub mod audit;
pub mod cli;
pub mod flags;
pub mod limits;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::access::{check_user_name, Role};
use crate::secret::Secret;
use crate::store::users::{User, Users};
use crate::store::{StoreError, StoreResult};

pub use audit::{Auditor, Origin};
pub use flags::Flags;

/// The access parts a process runs with, built from the database and the settings.
#[derive(Debug, Clone)]
pub struct Parts {
    pub access: Access,
    pub auditor: Auditor,
    pub flags: std::sync::Arc<Flags>,
    /// Seals personal data (`None`: no `TOKEN_ENCRYPTION_KEY`).
    pub sealer: Option<crate::domain::privacy::SharedSealer>,
}

impl Parts {
    pub fn new(
        db: &crate::store::Db,
        keyring: Option<crate::crypto::Keyring>,
        flag_defaults: [bool; 5],
        admin_token: Option<Secret>,
    ) -> Self {
        let sealer =
            keyring.map(|k| std::sync::Arc::new(k) as crate::domain::privacy::SharedSealer);
        if sealer.is_none() {
            tracing::warn!("TOKEN_ENCRYPTION_KEY is unset: no contact is cached and audit entries name no subject");
        }
        let flags = std::sync::Arc::new(Flags::new(
            crate::store::flags::FlagStore::new(db.clone()),
            flag_defaults,
        ));
        Self {
            access: Access::new(Users::new(db.clone()), admin_token),
            auditor: Auditor::new(
                crate::store::audit::Audit::new(db.clone()),
                sealer.clone(),
                flags.clone(),
            ),
            flags,
            sealer,
        }
    }
}

/// The name the bootstrap `ADMIN_TOKEN` acts under (never a user's: names are checked against
/// it).
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct Access {
    users: Users,
    admin_token: Option<Secret>,
}

/// Why a user change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => UserError::Conflict(m),
            StoreError::NotFound(m) => UserError::NotFound(m),
            other => UserError::Store(other),
        }
    }
}

/// A new token: `apt_` and 32 random bytes, URL-safe base64. Shown once; stored as its hash.
fn new_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new(format!("apt_{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// What the store (and a dashboard session) keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Access {
    pub fn new(users: Users, admin_token: Option<Secret>) -> Self {
        Self { users, admin_token }
    }

    /// The caller a bearer token stands for; `None` for an unknown or revoked token.
    pub async fn authenticate(&self, token: &str) -> StoreResult<Option<Caller>> {
        if let Some(admin) = &self.admin_token {
            if crate::secret::same(token, admin.expose()) {
                return Ok(Some(Caller {
                    name: BOOTSTRAP_ADMIN.into(),
                    role: Role::Admin,
                }));
            }
        }
        if !token.starts_with("apt_") {
            return Ok(None);
        }
        self.authenticate_hash(&token_hash(token)).await
    }

    /// The caller whose token has this hash (a dashboard session keeps the hash, never the
    /// token).
    pub async fn authenticate_hash(&self, hash: &str) -> StoreResult<Option<Caller>> {
        if let Some(admin) = &self.admin_token {
            if crate::secret::same(hash, &token_hash(admin.expose())) {
                return Ok(Some(Caller {
                    name: BOOTSTRAP_ADMIN.into(),
                    role: Role::Admin,
                }));
            }
        }
        Ok(self
            .users
            .by_token(hash)
            .await?
            .map(|(name, role)| Caller { name, role }))
    }

    /// Adds a user with their first token (returned once, never stored in clear).
    pub async fn add_user(&self, name: &str, role: Role, by: &str) -> Result<Secret, UserError> {
        let name = name.trim();
        check_user_name(name).map_err(UserError::Invalid)?;
        if name.eq_ignore_ascii_case(BOOTSTRAP_ADMIN) || name.eq_ignore_ascii_case("hubspot") {
            return Err(UserError::Conflict(format!(
                "'{name}' is reserved (the audit uses it); pick another name"
            )));
        }
        let token = new_token();
        self.users
            .add(name, role, by, &token_hash(token.expose()))
            .await?;
        Ok(token)
    }

    /// Another token for an active user (the old ones keep working until the user is revoked).
    pub async fn add_token(&self, name: &str) -> Result<Secret, UserError> {
        let token = new_token();
        self.users
            .add_token(name.trim(), &token_hash(token.expose()))
            .await?;
        Ok(token)
    }

    /// Revokes a user and all their tokens, at once for every process (tokens are checked
    /// against the database on every request).
    pub async fn revoke(&self, name: &str) -> Result<(), UserError> {
        Ok(self.users.revoke(name.trim()).await?)
    }

    pub async fn users(&self) -> StoreResult<Vec<User>> {
        self.users.list().await
    }
}
