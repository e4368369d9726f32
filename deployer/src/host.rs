//! The machine being deployed to: this one, or a remote one over SSH. Everything the deployer
//! does to the host's files, and every HTTP check of a port on the host's `127.0.0.1`, goes
//! through here, so the rest of the code does not care where the host is.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::DeployConfig;
use crate::engine::Engine;
use crate::remote::{Remote, SshTarget};

#[derive(Clone)]
pub enum Host {
    Local,
    Remote(Arc<Remote>),
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Host({self})")
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Local => f.write_str("this host"),
            Host::Remote(r) => write!(f, "{} (over SSH)", r.target()),
        }
    }
}

impl Host {
    /// The host `deploy.yml` names: `remote:` over SSH (connecting now, in a blocking thread),
    /// this machine otherwise.
    pub async fn of(config: &DeployConfig) -> anyhow::Result<Self> {
        Self::connect(config.remote.as_ref()).await
    }

    /// The machine `ssh` names (connecting now), or this one.
    pub async fn connect(ssh: Option<&crate::config::RemoteConfig>) -> anyhow::Result<Self> {
        match ssh {
            None => Ok(Host::Local),
            Some(remote) => {
                let target = SshTarget::from_config(remote);
                let remote = tokio::task::spawn_blocking(move || Remote::connect(target))
                    .await
                    .context("the SSH connection task")??;
                Ok(Host::Remote(Arc::new(remote)))
            }
        }
    }

    /// The host's Docker engine.
    pub async fn engine(&self) -> anyhow::Result<Engine> {
        match self {
            Host::Local => Engine::connect().await,
            Host::Remote(r) => Engine::connect_unix(&r.docker_socket()?).await,
        }
    }

    /// `url` (on the host's `127.0.0.1`) as this machine reaches it: itself locally, through a
    /// forwarded port for a remote host.
    pub fn reach(&self, url: &str) -> anyhow::Result<String> {
        let Host::Remote(remote) = self else {
            return Ok(url.to_string());
        };
        let (scheme, rest) = url.split_once("://").context("a URL needs a scheme")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let port = match authority.rsplit_once(':') {
            Some((_, p)) => p.parse().with_context(|| format!("bad port in {url}"))?,
            None if scheme == "https" => 443,
            None => 80,
        };
        let local = remote.local_port(port)?;
        Ok(format!("{scheme}://127.0.0.1:{local}{path}"))
    }

    /// The TCP ports something listens on, on a remote host (`ss -Htln` over SSH); `None` when
    /// they cannot be listed (no `ss` there). Here, [`crate::check`] tries to bind instead.
    pub async fn listening_ports(&self) -> Option<std::collections::BTreeSet<u16>> {
        let Host::Remote(r) = self else {
            return None;
        };
        let r = r.clone();
        let (code, out) = tokio::task::spawn_blocking(move || r.run("ss -Htln"))
            .await
            .ok()?
            .ok()?;
        (code == 0).then(|| listening(&out))
    }

    /// Free bytes on the filesystem holding `dir` (`df -Pk`, here or over SSH); `None` when it
    /// cannot be read.
    pub async fn free_bytes(&self, dir: &Path) -> Option<u64> {
        let dir = dir.to_str()?.to_string();
        let out = match self {
            Host::Local => {
                let out = tokio::process::Command::new("df")
                    .args(["-Pk", &dir])
                    .output()
                    .await
                    .ok()?;
                String::from_utf8(out.stdout).ok()?
            }
            Host::Remote(r) => {
                let (r, command) = (
                    r.clone(),
                    format!("df -Pk {}", shlex::try_quote(&dir).ok()?),
                );
                let (code, out) = tokio::task::spawn_blocking(move || r.run(&command))
                    .await
                    .ok()?
                    .ok()?;
                (code == 0).then_some(out)?
            }
        };
        // Filesystem 1024-blocks Used Available Capacity Mounted-on
        let line = out.lines().nth(1)?;
        let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
        Some(kib * 1024)
    }

    pub fn read(&self, path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Host::Local => match std::fs::read(path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
            },
            Host::Remote(r) => r.read(path),
        }
    }

    /// The file's text, or `None` when it is missing or unreadable.
    pub fn read_string(&self, path: &Path) -> Option<String> {
        let bytes = self.read(path).ok()??;
        String::from_utf8(bytes).ok()
    }

    pub fn is_file(&self, path: &Path) -> bool {
        match self {
            Host::Local => path.is_file(),
            Host::Remote(r) => r.is_file(path),
        }
    }

    pub fn create_dir_all(&self, dir: &Path) -> anyhow::Result<()> {
        match self {
            Host::Local => std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display())),
            Host::Remote(r) => r.create_dir_all(dir),
        }
    }

    /// Replaces `path` with `bytes` atomically: a synced temporary file in the same directory
    /// (created if missing), renamed over it. A reader sees the old file or the new one, never
    /// a torn one.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Host::Local => {
                let dir = path.parent().context("a file needs a directory")?;
                self.create_dir_all(dir)?;
                let tmp = dir.join(format!(
                    ".{}.{}.tmp",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
                    std::process::id()
                ));
                write_synced(&tmp, bytes)?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot move the new {} into place", path.display()))
            }
            Host::Remote(r) => r.write_atomic(path, bytes),
        }
    }

    /// Creates `path` holding `bytes` only if it does not exist, content and existence at once
    /// (a synced temporary file, then link(2)). `Ok(false)` when it already exists.
    pub fn create_new(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
        match self {
            Host::Local => {
                let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
                write_synced(&tmp, bytes)?;
                let linked = std::fs::hard_link(&tmp, path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
                }
            }
            Host::Remote(r) => r.create_new(path, bytes),
        }
    }

    /// Removes a file; `Ok(false)` when there was none.
    pub fn remove(&self, path: &Path) -> anyhow::Result<bool> {
        match self {
            Host::Local => match std::fs::remove_file(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
            },
            Host::Remote(r) => r.remove(path),
        }
    }

    /// Appends `bytes` in one write and syncs.
    pub fn append(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Host::Local => {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                f.write_all(bytes)?;
                f.sync_all()?;
                Ok(())
            }
            Host::Remote(r) => r.append(path, bytes),
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// The ports in `ss -Htln` output: the local address is the fourth column (`0.0.0.0:443`,
/// `[::]:80`, `127.0.0.1:3000`, `*:22`).
pub fn listening(ss: &str) -> std::collections::BTreeSet<u16> {
    ss.lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .filter_map(|addr| addr.rsplit_once(':')?.1.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn listening_ports_are_read_from_ss() {
        let ss = "LISTEN 0      4096     0.0.0.0:9443 0.0.0.0:*\nLISTEN 0 244 127.0.0.1:5432 0.0.0.0:*\nLISTEN 0 4096 [::]:80 [::]:*\nLISTEN 0 128 *:22 *:*\n";
        assert_eq!(
            super::listening(ss).into_iter().collect::<Vec<_>>(),
            [22, 80, 5432, 9443]
        );
        assert!(super::listening("").is_empty());
    }
}
