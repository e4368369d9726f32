//! The deployer's state on the host: the deploy lock and the append-only deploy history, in the
//! configured state directory (on a remote host too: the files go through [`Host`]). The lock
//! appears with its content in one step (a temporary file linked into place), so a deployer
//! killed at any moment leaves no lock or a whole one; a history line torn by a kill is
//! skipped and the next record starts on a line of its own.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::host::Host;

/// Who holds the deploy lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub since: String,
    pub command: String,
}

impl LockHolder {
    pub fn me(command: &str) -> Self {
        Self {
            user: whoami(),
            host: hostname(),
            pid: std::process::id(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command: command.to_string(),
        }
    }

    /// A holder on this host whose process is gone: it was killed, and its lock is stale.
    pub fn is_stale(&self) -> bool {
        self.host == hostname() && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (pid {}) since {}: {}",
            self.user, self.host, self.pid, self.since, self.command
        )
    }
}

/// One finished (or failed) deploy or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub at: String,
    pub user: String,
    pub command: String,
    pub outcome: String,
    pub live_slot: Option<String>,
    pub version: Option<String>,
    pub image: Option<String>,
    pub duration_ms: u64,
    /// Why it failed (the error, as the operator saw it); none for a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The switch's figures: to healthy, healthy to switched, old slot drained (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
    /// The release's schema, as its image reported it (deploy.yml `schema:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<crate::plan::Schema>,
    /// The preflight checks `up` ran first, one verdict line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// The smoke checks and what each got.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<String>,
}

/// What a run's switch cost, in milliseconds, and what each slot answered around it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub healthy_after_ms: Option<u64>,
    pub healthy_to_switched_ms: Option<u64>,
    pub drained_in_ms: Option<u64>,
    /// Each slot's answers through nginx (and 5xx among them) from 5 s before traffic moved to
    /// the end of the run; `nginx` counts the answers no slot gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around_switch: Option<std::collections::BTreeMap<String, crate::traffic::Tally>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<crate::execute::BakeFigures>,
}

impl Figures {
    pub fn of(t: &crate::execute::Timings) -> Self {
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
        Self {
            healthy_after_ms: ms(t.healthy_after),
            healthy_to_switched_ms: ms(t.healthy_to_switched),
            drained_in_ms: ms(t.drained_in),
            around_switch: t.around_switch.clone(),
            bake: t.bake.clone(),
        }
    }
}

pub fn whoami() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .or_else(|| {
            let out = std::process::Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[derive(Debug, Clone)]
pub struct StateDir {
    host: Host,
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another deploy holds the lock: {0}. Wait for it, or if it is gone, run `deployer lock release`")]
    Held(LockHolder),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// Holding the lock; dropping it releases it.
#[derive(Debug)]
pub struct LockGuard {
    host: Host,
    path: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.host.remove(&self.path);
    }
}

impl StateDir {
    /// The state directory `dir` on `host`.
    pub fn new(host: Host, dir: impl Into<PathBuf>) -> Self {
        Self {
            host,
            dir: dir.into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock.json")
    }

    fn history_path(&self) -> PathBuf {
        self.dir.join("history.jsonl")
    }

    fn ensure(&self) -> anyhow::Result<()> {
        self.host.create_dir_all(&self.dir).with_context(|| {
            format!(
                "cannot create the state directory {} on {} (set state_dir in deploy.yml to a writable path)",
                self.dir.display(),
                self.host
            )
        })
    }

    /// Takes the lock, or says who holds it. A stale lock (its process on this host is gone) is
    /// taken over, and `on_stale` hears about it.
    pub fn acquire(
        &self,
        me: &LockHolder,
        mut on_stale: impl FnMut(&LockHolder),
    ) -> Result<LockGuard, LockError> {
        self.ensure()?;
        let content = serde_json::to_vec_pretty(me).expect("serializable");
        loop {
            // Created only if absent, content and existence together.
            let created = self
                .host
                .create_new(&self.lock_path(), &content)
                .with_context(|| format!("cannot create the lock in {}", self.dir.display()))?;
            if created {
                return Ok(LockGuard {
                    host: self.host.clone(),
                    path: self.lock_path(),
                });
            }
            match self.holder() {
                Some(h) if h.is_stale() => {
                    on_stale(&h);
                    self.host.remove(&self.lock_path())?;
                }
                Some(h) => return Err(LockError::Held(h)),
                // Vanished between the attempt and the read: try again.
                None => {}
            }
        }
    }

    /// The current holder, if the lock is held.
    pub fn holder(&self) -> Option<LockHolder> {
        let text = self.host.read(&self.lock_path()).ok()??;
        Some(
            serde_json::from_slice(&text).unwrap_or_else(|_| LockHolder {
                user: "unknown".into(),
                host: "unknown".into(),
                pid: 0,
                since: "unknown".into(),
                command: "unreadable lock file".into(),
            }),
        )
    }

    /// Releases the lock whoever holds it (`deployer lock release`). Returns the holder.
    pub fn release(&self) -> anyhow::Result<Option<LockHolder>> {
        let holder = self.holder();
        if self
            .host
            .remove(&self.lock_path())
            .context("cannot remove the lock file")?
        {
            Ok(holder)
        } else {
            Ok(None)
        }
    }

    /// Appends one record (one JSON line, written with a single append and synced).
    pub fn record(&self, record: &HistoryRecord) -> anyhow::Result<()> {
        self.ensure()?;
        let mut line = serde_json::to_vec(record).expect("serializable");
        line.push(b'\n');
        // A torn last line (killed mid-append) gets its own line end, so this record stays whole.
        let torn = self
            .host
            .read(&self.history_path())
            .ok()
            .flatten()
            .is_some_and(|t| t.last().is_some_and(|b| *b != b'\n'));
        if torn {
            line.insert(0, b'\n');
        }
        self.host
            .append(&self.history_path(), &line)
            .context("cannot append to the deploy history")
    }

    /// All records, oldest first. A torn last line (a kill mid-append) is skipped.
    pub fn history(&self) -> Vec<HistoryRecord> {
        self.host
            .read_string(&self.history_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn temp() -> StateDir {
        let dir = std::env::temp_dir().join(format!(
            "deployer-state-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        StateDir::new(Host::Local, dir)
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name() {
        let state = temp();
        let me = LockHolder::me("up");
        let guard = state.acquire(&me, |_| panic!("not stale")).unwrap();
        let other = LockHolder {
            pid: me.pid,
            command: "rollback".into(),
            ..me.clone()
        };
        match state.acquire(&other, |_| panic!("not stale")) {
            Err(LockError::Held(h)) => assert_eq!(h, me),
            other => panic!("{other:?}"),
        }
        assert_eq!(state.holder(), Some(me.clone()));
        drop(guard);
        assert_eq!(state.holder(), None, "dropping the guard releases");
        state.acquire(&other, |_| panic!("not stale")).unwrap();
        std::fs::remove_dir_all(state.path()).unwrap();
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over() {
        let state = temp();
        let dead = LockHolder {
            pid: u32::MAX - 1,
            ..LockHolder::me("up (killed)")
        };
        std::mem::forget(state.acquire(&dead, |_| {}).unwrap());
        let mut saw = None;
        let _guard = state
            .acquire(&LockHolder::me("up"), |h| saw = Some(h.clone()))
            .unwrap();
        assert_eq!(saw, Some(dead));
        std::fs::remove_dir_all(state.path()).unwrap();
    }

    #[test]
    fn history_skips_a_torn_last_line() {
        let state = temp();
        let record = HistoryRecord {
            at: "2026-11-23T00:00:00Z".into(),
            user: "ops".into(),
            command: "up".into(),
            outcome: "ok".into(),
            live_slot: Some("green".into()),
            version: Some("abc".into()),
            image: Some("app:abc".into()),
            duration_ms: 1200,
            reason: None,
            figures: None,
            schema: None,
            checks: vec![],
            smoke: vec![],
        };
        state.record(&record).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(state.history_path())
            .unwrap();
        f.write_all(b"{\"at\": \"2026-11-23T00:00:01Z\", \"us")
            .unwrap();
        assert_eq!(state.history(), vec![record.clone()]);
        state.record(&record).unwrap();
        assert_eq!(
            state.history(),
            vec![record.clone(), record],
            "the next record stays whole"
        );
        std::fs::remove_dir_all(state.path()).unwrap();
    }
}
