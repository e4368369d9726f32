//! The runtime feature flags: each process keeps them in memory, read from the database every
//! `FLAGS_REFRESH` by a job ([`crate::jobs::upkeep`]), so a change made through one process (blue) is seen
//! by every other (green) within that time, without a restart. A flag with no row in the
//! database has the environment's value. If the database cannot be read, the last values stay.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::domain::access::Flag;
use crate::store::flags::FlagStore;
use crate::store::StoreResult;

#[derive(Debug)]
pub struct Flags {
    values: [AtomicBool; 5],
    defaults: [bool; 5],
    store: FlagStore,
}

/// A flag as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlagState {
    #[schema(value_type = String, example = "HUBSPOT_CACHE_ENABLED")]
    pub name: &'static str,
    pub enabled: bool,
    /// The environment's value, used while no one has set it.
    pub default: bool,
    /// Who set it last, and when (ms since the epoch); absent while it has the default.
    pub updated_by: Option<String>,
    pub updated_at: Option<i64>,
}

impl Flags {
    pub fn new(store: FlagStore, defaults: [bool; 5]) -> Self {
        Self {
            values: defaults.map(AtomicBool::new),
            defaults,
            store,
        }
    }

    pub fn is_on(&self, flag: Flag) -> bool {
        self.values[flag.index()].load(Ordering::Relaxed)
    }

    /// Reads the database; returns the flags as stored now.
    pub async fn refresh(&self) -> StoreResult<Vec<FlagState>> {
        let stored = self.store.all().await?;
        Ok(Flag::ALL
            .iter()
            .map(|&flag| {
                let row = stored.iter().find(|s| s.flag == flag);
                let enabled = row.map_or(self.defaults[flag.index()], |r| r.enabled);
                self.values[flag.index()].store(enabled, Ordering::Relaxed);
                FlagState {
                    name: flag.name(),
                    enabled,
                    default: self.defaults[flag.index()],
                    updated_by: row.map(|r| r.updated_by.clone()),
                    updated_at: row.map(|r| r.updated_at),
                }
            })
            .collect())
    }

    /// Sets a flag for every process; this one sees it at once.
    pub async fn set(&self, flag: Flag, enabled: bool, by: &str) -> StoreResult<Vec<FlagState>> {
        self.store.set(flag, enabled, by).await?;
        self.refresh().await
    }
}
