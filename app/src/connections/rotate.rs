//! Key rotation ([`Portals::rotate_keys`], `app keys rotate`): every stored token re-sealed
//! under the current key, safely beside running processes.

use super::tokens::context;
use super::{InstallError, Portals};

impl Portals {
    /// Re-seals every token under the current key. Safe beside running processes: a row that
    /// changed since it was read (a refresh) is read again. Returns how many rows changed.
    pub async fn rotate_keys(&self) -> Result<usize, InstallError> {
        let (_, keyring) = self.oauth()?;
        let mut changed = 0;
        for _round in 0..5 {
            let mut raced = false;
            for (portal, access, refresh) in self.store.all_sealed().await? {
                let reseal = |sealed: &Option<String>,
                              kind: &str|
                 -> Result<Option<String>, InstallError> {
                    match sealed {
                        Some(s) if keyring.is_stale(s) => {
                            let plain = keyring.open(s, &context(kind, portal)).map_err(|e| {
                                InstallError::Refused(format!("portal {portal}'s {kind}: {e}"))
                            })?;
                            Ok(Some(keyring.seal(&plain, &context(kind, portal))))
                        }
                        other => Ok(other.clone()),
                    }
                };
                let new = (
                    reseal(&access, "access_token")?,
                    reseal(&refresh, "refresh_token")?,
                );
                if new == (access.clone(), refresh.clone()) {
                    continue;
                }
                if self
                    .store
                    .reseal(portal, (&access, &refresh), (&new.0, &new.1))
                    .await?
                {
                    changed += 1;
                } else {
                    raced = true;
                }
            }
            if !raced {
                return Ok(changed);
            }
        }
        Ok(changed)
    }
}
