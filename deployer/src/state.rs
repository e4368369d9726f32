//! The deployer's state on the host: the deploy lock and the append-only deploy history, in the
//! configured state directory. Every write is atomic (write a temporary file, then link or
//! rename it into place), so a deployer killed at any moment leaves either the old file or the
//! new one, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

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
    path: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
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
        std::fs::create_dir_all(&self.dir).with_context(|| {
            format!(
                "cannot create the state directory {} (set state_dir in deploy.yml to a writable path)",
                self.dir.display()
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
        let tmp = self.dir.join(format!(".lock.{}.tmp", me.pid));
        write_synced(&tmp, &serde_json::to_vec_pretty(me).expect("serializable"))?;
        let result = loop {
            // link() fails if the lock exists: creation and content arrive together.
            match std::fs::hard_link(&tmp, self.lock_path()) {
                Ok(()) => {
                    break Ok(LockGuard {
                        path: self.lock_path(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match self.holder() {
                    Some(h) if h.is_stale() => {
                        on_stale(&h);
                        let _ = std::fs::remove_file(self.lock_path());
                    }
                    Some(h) => break Err(LockError::Held(h)),
                    // Vanished between link and read: try again.
                    None => {}
                },
                Err(e) => {
                    break Err(LockError::Io(anyhow::Error::new(e).context(format!(
                        "cannot create the lock in {}",
                        self.dir.display()
                    ))))
                }
            }
        };
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// The current holder, if the lock is held.
    pub fn holder(&self) -> Option<LockHolder> {
        let text = std::fs::read(self.lock_path()).ok()?;
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
        match std::fs::remove_file(self.lock_path()) {
            Ok(()) => Ok(holder),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("cannot remove the lock file"),
        }
    }

    /// Appends one record (one JSON line, written with a single append and synced).
    pub fn record(&self, record: &HistoryRecord) -> anyhow::Result<()> {
        self.ensure()?;
        let mut line = serde_json::to_vec(record).expect("serializable");
        line.push(b'\n');
        // A torn last line (killed mid-append) gets its own line end, so this record stays whole.
        let torn =
            std::fs::read(self.history_path()).is_ok_and(|t| t.last().is_some_and(|b| *b != b'\n'));
        if torn {
            line.insert(0, b'\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.history_path())
            .context("cannot open the deploy history")?;
        f.write_all(&line)?;
        f.sync_all()?;
        Ok(())
    }

    /// All records, oldest first. A torn last line (a kill mid-append) is skipped.
    pub fn history(&self) -> Vec<HistoryRecord> {
        std::fs::read_to_string(self.history_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same directory, synced, then
/// renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a file needs a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move the new {} into place", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> StateDir {
        let dir = std::env::temp_dir().join(format!(
            "deployer-state-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        StateDir::new(dir)
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
