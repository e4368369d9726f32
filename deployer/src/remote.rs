//! A remote Docker host over SSH (ssh2): the only module that speaks SSH.
//!
//! - **Docker**: the engine's unix socket on the host is forwarded to a private local socket
//!   (in a `0700` directory: it is root-equivalent), one `direct-streamlocal` channel per
//!   connection ([`crate::tunnel`]); bollard connects to the local end as to any engine.
//! - **HTTP** (health checks, the check through nginx): a port on the host's `127.0.0.1` is
//!   forwarded to a local port, one `direct-tcpip` channel per connection.
//! - **Files** (lock, history, rendered nginx config): content over SFTP; the steps that must be
//!   atomic (`mv -f` over a file, `ln` that fails when the target exists) run as commands, so
//!   the host's own rename(2) and link(2) give the guarantees, as they do locally.
//!
//! The host key must be in `known_hosts` (never trusted on first use). Two sessions: the
//! control one (SFTP, commands; used under a lock) and the tunnel's (owned by its thread).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use ssh2::{CheckResult, HashType, KnownHostFileKind, OpenFlags, OpenType, Session, Sftp};

use crate::config::RemoteConfig;
use crate::tunnel::{Dest, Tunnel};

/// Host key algorithms in OpenSSH's client order, so the key libssh2 negotiates is the one an
/// earlier `ssh` login (or `ssh-keyscan`) put in known_hosts.
const HOST_KEY_PREFERENCE: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
                                   ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Blocking SSH operations on the control session give up after this long.
const OPERATION_TIMEOUT_MS: u32 = 60_000;
const SFTP_NO_SUCH_FILE: i32 = 2;

/// Where and as whom to connect, resolved from `deploy.yml`.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub docker_socket: String,
}

impl SshTarget {
    pub fn from_config(remote: &RemoteConfig) -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
        Self {
            host: remote.host.clone(),
            port: remote.port,
            user: remote.user.clone(),
            identity: remote.identity.clone(),
            known_hosts: remote
                .known_hosts
                .clone()
                .unwrap_or_else(|| home.join(".ssh/known_hosts")),
            docker_socket: remote.docker_socket.clone(),
        }
    }
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// A connected remote host: the control session (SFTP and commands) and the forwards.
pub struct Remote {
    target: SshTarget,
    control: Mutex<Control>,
    /// Private directory of the local ends of forwarded sockets; removed on drop.
    sockets: PathBuf,
    tunnel: Mutex<Option<Tunnel>>,
    docker: Mutex<Option<PathBuf>>,
    ports: Mutex<Vec<(u16, u16)>>,
}

struct Control {
    session: Session,
    sftp: Sftp,
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.sockets);
    }
}

impl Remote {
    /// Connects, checks the host key against known_hosts, authenticates, and checks that the
    /// Docker socket can be forwarded, so every later failure is about the deploy, not access.
    pub fn connect(target: SshTarget) -> anyhow::Result<Self> {
        let (session, _) = open_session(&target)?;
        session.set_timeout(OPERATION_TIMEOUT_MS);
        let sftp = session
            .sftp()
            .with_context(|| format!("{target}: the SSH server offers no SFTP subsystem (enable `Subsystem sftp` in sshd_config)"))?;
        // The Docker socket, once, with the reasons it can fail.
        session
            .channel_direct_streamlocal(&target.docker_socket, None)
            .map_err(|e| {
                anyhow!(
                    "{target}: cannot reach {} through SSH ({}): the SSH server must allow it \
                     (AllowStreamLocalForwarding yes) and {} must be allowed to use Docker \
                     (e.g. in the docker group)",
                    target.docker_socket,
                    e.message(),
                    target.user
                )
            })?
            .close()
            .ok();
        let sockets = std::env::temp_dir().join(format!(
            "deployer-ssh-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&sockets)
            .with_context(|| format!("cannot create {}", sockets.display()))?;
        Ok(Self {
            target,
            control: Mutex::new(Control { session, sftp }),
            sockets,
            tunnel: Mutex::new(None),
            docker: Mutex::new(None),
            ports: Mutex::new(Vec::new()),
        })
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The tunnel of forwarded connections (its own session, connected on first use).
    fn tunnel(&self) -> anyhow::Result<Tunnel> {
        let mut tunnel = self.tunnel.lock().expect("not poisoned");
        if let Some(t) = tunnel.as_ref() {
            return Ok(t.clone());
        }
        let (session, socket) = open_session(&self.target)?;
        let t = Tunnel::start(session, socket).context("cannot start the SSH tunnel")?;
        *tunnel = Some(t.clone());
        Ok(t)
    }

    /// A local socket that reaches the host's Docker engine (created on first use).
    pub fn docker_socket(&self) -> anyhow::Result<PathBuf> {
        let mut docker = self.docker.lock().expect("not poisoned");
        if let Some(path) = docker.as_ref() {
            return Ok(path.clone());
        }
        let path = self.sockets.join("docker.sock");
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        let tunnel = self.tunnel()?;
        let dest = Dest::UnixSocket(self.target.docker_socket.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                if conn.set_nonblocking(true).is_ok() {
                    let local = mio::net::UnixStream::from_std(conn);
                    tunnel.forward(Box::new(local), dest.clone());
                }
            }
        });
        *docker = Some(path.clone());
        Ok(path)
    }

    /// A local port that reaches `127.0.0.1:port` on the host (created on first use).
    pub fn local_port(&self, port: u16) -> anyhow::Result<u16> {
        let mut ports = self.ports.lock().expect("not poisoned");
        if let Some((_, local)) = ports.iter().find(|(p, _)| *p == port) {
            return Ok(*local);
        }
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
        let local = listener.local_addr()?.port();
        let tunnel = self.tunnel()?;
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                if conn.set_nonblocking(true).is_ok() {
                    conn.set_nodelay(true).ok();
                    let local = mio::net::TcpStream::from_std(conn);
                    tunnel.forward(Box::new(local), Dest::Port(port));
                }
            }
        });
        ports.push((port, local));
        Ok(local)
    }

    /// Runs `command` (through the login shell); returns its exit status and output.
    pub fn run(&self, command: &str) -> anyhow::Result<(i32, String)> {
        let control = self.control.lock().expect("not poisoned");
        let mut channel = control
            .session
            .channel_session()
            .with_context(|| format!("{}: cannot open a session channel", self.target))?;
        channel
            .exec(command)
            .with_context(|| format!("{}: cannot run `{command}`", self.target))?;
        let mut out = String::new();
        channel.read_to_string(&mut out)?;
        let mut err = String::new();
        channel.stderr().read_to_string(&mut err)?;
        channel.wait_close()?;
        out.push_str(&err);
        Ok((channel.exit_status()?, out))
    }

    fn run_ok(&self, command: &str) -> anyhow::Result<()> {
        match self.run(command)? {
            (0, _) => Ok(()),
            (code, out) => bail!(
                "{}: `{command}` failed (exit {code}): {}",
                self.target,
                out.trim()
            ),
        }
    }

    pub fn read(&self, path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
        let control = self.control.lock().expect("not poisoned");
        let mut file = match control.sftp.open(path) {
            Ok(f) => f,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(self.sftp_error(e, "read", path)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("{}: reading {}", self.target, path.display()))?;
        Ok(Some(bytes))
    }

    pub fn is_file(&self, path: &Path) -> bool {
        let control = self.control.lock().expect("not poisoned");
        control.sftp.stat(path).is_ok_and(|s| s.is_file())
    }

    fn exists(&self, path: &Path) -> bool {
        let control = self.control.lock().expect("not poisoned");
        control.sftp.lstat(path).is_ok()
    }

    pub fn create_dir_all(&self, dir: &Path) -> anyhow::Result<()> {
        self.run_ok(&format!("mkdir -p -- {}", quote(dir)?))
    }

    /// Opens `path` with `flags` (mode 0644), writes `bytes` in one go and syncs. A missing
    /// directory is created (once, on SFTP's "no such file"), so the common case costs no
    /// extra command on the host.
    fn write_file(&self, path: &Path, flags: OpenFlags, bytes: &[u8]) -> anyhow::Result<()> {
        let open = || {
            let control = self.control.lock().expect("not poisoned");
            control.sftp.open_mode(path, flags, 0o644, OpenType::File)
        };
        let mut file = match open() {
            Err(e) if is_missing(&e) => {
                self.create_dir_all(path.parent().context("a file needs a directory")?)?;
                open()
            }
            opened => opened,
        }
        .map_err(|e| self.sftp_error(e, "write", path))?;
        file.write_all(bytes)
            .with_context(|| format!("{}: writing {}", self.target, path.display()))?;
        file.fsync()
            .with_context(|| format!("{}: syncing {}", self.target, path.display()))?;
        Ok(())
    }

    /// Writes `bytes` to a new file (truncating one that exists) and syncs it.
    fn write_synced(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        self.write_file(path, flags, bytes)
    }

    /// Replaces `path` atomically: a synced temporary file beside it, then `mv -f` (rename(2)).
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let tmp = temp_beside(path)?;
        self.write_synced(&tmp, bytes)?;
        self.run_ok(&format!("mv -f -- {} {}", quote(&tmp)?, quote(path)?))
    }

    /// Creates `path` with `bytes` only if it does not exist (`ln`, i.e. link(2), fails when it
    /// does): content and existence arrive together. `Ok(false)` when it exists.
    pub fn create_new(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
        let tmp = temp_beside(path)?;
        self.write_synced(&tmp, bytes)?;
        let (code, out) = self.run(&format!("ln -- {} {}", quote(&tmp)?, quote(path)?))?;
        let _ = self.remove(&tmp);
        match code {
            0 => Ok(true),
            // ln's message depends on the host's locale; the file's presence does not.
            _ if self.exists(path) => Ok(false),
            _ => bail!(
                "{}: cannot create {}: {}",
                self.target,
                path.display(),
                out.trim()
            ),
        }
    }

    /// Removes a file; `Ok(false)` when there was none.
    pub fn remove(&self, path: &Path) -> anyhow::Result<bool> {
        let control = self.control.lock().expect("not poisoned");
        match control.sftp.unlink(path) {
            Ok(()) => Ok(true),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(self.sftp_error(e, "remove", path)),
        }
    }

    /// Appends `bytes` with one write (O_APPEND on the host) and syncs.
    pub fn append(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND;
        self.write_file(path, flags, bytes)
    }

    fn sftp_error(&self, e: ssh2::Error, verb: &str, path: &Path) -> anyhow::Error {
        anyhow!(
            "{}: cannot {verb} {} over SFTP: {} (does the directory exist, and may {} write it?)",
            self.target,
            path.display(),
            e.message(),
            self.target.user
        )
    }
}

fn is_missing(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::SFTP(SFTP_NO_SUCH_FILE)
}

fn quote(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    shlex::try_quote(text)
        .map(|q| q.into_owned())
        .map_err(|_| anyhow!("{} cannot be quoted for the shell", path.display()))
}

fn temp_beside(path: &Path) -> anyhow::Result<PathBuf> {
    let dir = path.parent().context("a file needs a directory")?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    Ok(dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        rand_suffix()
    )))
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

/// TCP connect, handshake, host key check, authentication. Also returns a second handle on the
/// session's socket, for polling it.
/// A host that stops answering (powered off, cut off) sends no reset: without these, every
/// call through the tunnel would wait for the kernel's retransmissions (many minutes). With
/// them, the connection fails within [`DEAD_AFTER`] of the host going silent, busy or idle.
fn notice_a_dead_host(tcp: &TcpStream) {
    let socket = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2))
        .with_retries(3);
    socket.set_tcp_keepalive(&keepalive).ok();
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(DEAD_AFTER)).ok();
}

/// How long sent data may go unacknowledged before the host counts as gone.
const DEAD_AFTER: Duration = Duration::from_secs(15);

fn open_session(target: &SshTarget) -> anyhow::Result<(Session, TcpStream)> {
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("{target}: cannot resolve {}", target.host))?
        .next()
        .with_context(|| format!("{target}: {} has no address", target.host))?;
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).with_context(|| {
        format!("{target}: cannot connect (is sshd running there, and the port right?)")
    })?;
    tcp.set_nodelay(true).ok();
    notice_a_dead_host(&tcp);
    let socket = tcp.try_clone().context("cannot clone the SSH socket")?;
    let mut session = Session::new().context("cannot start an SSH session")?;
    session.set_tcp_stream(tcp);
    session.set_timeout(CONNECT_TIMEOUT.as_millis() as u32);
    session
        .method_pref(ssh2::MethodType::HostKey, HOST_KEY_PREFERENCE)
        .context("SSH host key preferences")?;
    session
        .handshake()
        .with_context(|| format!("{target}: SSH handshake failed"))?;
    check_host_key(&session, target)?;
    authenticate(&session, target)?;
    session.set_timeout(0);
    Ok((session, socket))
}

fn check_host_key(session: &Session, target: &SshTarget) -> anyhow::Result<()> {
    let (key, _) = session.host_key().context("the server sent no host key")?;
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|h| {
            format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
            )
        })
        .unwrap_or_default();
    let mut known = session.known_hosts()?;
    let file = &target.known_hosts;
    let scan = format!(
        "ssh-keyscan -p {} {} >> {}",
        target.port,
        target.host,
        file.display()
    );
    if known.read_file(file, KnownHostFileKind::OpenSSH).is_err() && !file.exists() {
        bail!(
            "{target}: {} does not exist, so the host's key ({fingerprint}) cannot be checked; \
             after checking the fingerprint with the host's owner: {scan}",
            file.display()
        );
    }
    match known.check_port(&target.host, target.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound => bail!(
            "{target}: the host's key ({fingerprint}) is not in {}; after checking the \
             fingerprint with the host's owner: {scan}",
            file.display()
        ),
        CheckResult::Mismatch => bail!(
            "{target}: the host's key ({fingerprint}) is NOT the one in {}: refusing to \
             connect. If the host was really reinstalled, remove the old line \
             (ssh-keygen -R '[{}]:{}' -f {}) and add the new key",
            file.display(),
            target.host,
            target.port,
            file.display()
        ),
        CheckResult::Failure => bail!(
            "{target}: cannot check the host key against {}",
            file.display()
        ),
    }
}

fn authenticate(session: &Session, target: &SshTarget) -> anyhow::Result<()> {
    let user = &target.user;
    let mut tried = Vec::new();
    if let Some(identity) = &target.identity {
        if !identity.is_file() {
            bail!(
                "remote.identity {} does not exist; point it at the private key for {user}@{}",
                identity.display(),
                target.host
            );
        }
        let passphrase = std::env::var("DEPLOYER_SSH_PASSPHRASE").ok();
        let _ = session.userauth_pubkey_file(user, None, identity, passphrase.as_deref());
        tried.push(identity.display().to_string());
    } else {
        if std::env::var_os("SSH_AUTH_SOCK").is_some() {
            let _ = session.userauth_agent(user);
            tried.push("the SSH agent".to_string());
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            if session.authenticated() {
                break;
            }
            let key = home.join(".ssh").join(name);
            if key.is_file() {
                let _ = session.userauth_pubkey_file(user, None, &key, None);
                tried.push(key.display().to_string());
            }
        }
    }
    if session.authenticated() {
        return Ok(());
    }
    bail!(
        "{target}: authentication as {user} failed (tried: {}); add the public key to \
         ~{user}/.ssh/authorized_keys on the host, or set remote.identity \
         (DEPLOYER_SSH_PASSPHRASE for a key with a passphrase)",
        if tried.is_empty() {
            "nothing: no agent, no key in ~/.ssh".to_string()
        } else {
            tried.join(", ")
        }
    )
}
