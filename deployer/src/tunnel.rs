//! Forwarded connections, multiplexed over one SSH session (like OpenSSH's ControlMaster).
//!
//! Each local connection (to the private Docker socket or a forwarded port) becomes a channel of
//! one long-lived session, pumped by one thread in non-blocking mode. A new connection costs a
//! channel open (one round trip), not an SSH handshake: a deploy opens a connection per
//! `docker exec` (the exec hijacks it), and a handshake each time cost ~100 ms.
//!
//! libssh2 keeps one channel open in progress per session, so channels are opened one at a
//! time. The thread sleeps in `poll` on the local sockets and the session's socket, with a
//! short tick as a safety net (libssh2 may have read data for a channel before it is asked).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token, Waker};
use ssh2::{Channel, ErrorCode, Session};

const TICK: Duration = Duration::from_millis(20);
const WAKE: Token = Token(usize::MAX);
const SSH: Token = Token(usize::MAX - 1);
const LIBSSH2_ERROR_EAGAIN: i32 = -37;
const BUFFER: usize = 64 * 1024;

/// Where a forwarded connection goes, on the remote host.
#[derive(Debug, Clone)]
pub enum Dest {
    UnixSocket(String),
    /// A port on the host's 127.0.0.1.
    Port(u16),
}

/// The local end of a forwarded connection.
pub trait LocalStream: Read + Write + mio::event::Source + Send {}
impl<T: Read + Write + mio::event::Source + Send> LocalStream for T {}

/// The handle that hands new local connections to the pumping thread.
#[derive(Clone)]
pub struct Tunnel {
    tx: Sender<(Box<dyn LocalStream>, Dest)>,
    waker: Arc<Waker>,
}

impl Tunnel {
    /// Starts the thread that owns `session` (connected and authenticated; `socket` is a second
    /// handle on its TCP socket, for polling).
    pub fn start(session: Session, socket: TcpStream) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let (tx, rx) = mpsc::channel();
        socket.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name("ssh-tunnel".into())
            .spawn(move || {
                if let Err(e) = run(session, mio::net::TcpStream::from_std(socket), poll, rx) {
                    eprintln!("deployer: the SSH tunnel stopped: {e}");
                }
            })?;
        Ok(Self { tx, waker })
    }

    pub fn forward(&self, local: Box<dyn LocalStream>, dest: Dest) {
        if self.tx.send((local, dest)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

fn eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(LIBSSH2_ERROR_EAGAIN)
}

enum State {
    Opening,
    Open(Channel),
    /// Done; the channel's close is being sent.
    Closing(Channel),
    Gone,
}

struct Conn {
    local: Box<dyn LocalStream>,
    dest: Dest,
    state: State,
    /// Read from the local end, not yet written to the channel; and the other way.
    up: Vec<u8>,
    down: Vec<u8>,
    local_eof: bool,
    eof_sent: bool,
    remote_eof: bool,
}

impl Conn {
    fn open(&mut self, session: &Session) -> bool {
        let opened = match &self.dest {
            Dest::UnixSocket(path) => session.channel_direct_streamlocal(path, None),
            Dest::Port(port) => session.channel_direct_tcpip("127.0.0.1", *port, None),
        };
        match opened {
            Ok(channel) => self.state = State::Open(channel),
            Err(e) if eagain(&e) => return false,
            Err(e) => {
                eprintln!(
                    "deployer: SSH forward to {:?} refused: {}",
                    self.dest,
                    e.message()
                );
                self.state = State::Gone;
            }
        }
        true
    }

    /// Moves what it can both ways; true when anything moved.
    fn pump(&mut self, buf: &mut [u8]) -> bool {
        let State::Open(channel) = &mut self.state else {
            return false;
        };
        let mut progress = false;
        let mut failed = false;
        if !self.local_eof && self.up.len() < BUFFER {
            match self.local.read(buf) {
                Ok(0) => self.local_eof = true,
                Ok(n) => self.up.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => {}
                Err(_) => self.local_eof = true,
            }
            progress |= self.local_eof || !self.up.is_empty();
        }
        if !self.up.is_empty() {
            match channel.write(&self.up) {
                Ok(n) => {
                    self.up.drain(..n);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => failed = true,
            }
        }
        if self.local_eof && self.up.is_empty() && !self.eof_sent {
            match channel.send_eof() {
                Err(e) if eagain(&e) => {}
                _ => (self.eof_sent, progress) = (true, true),
            }
        }
        if !self.remote_eof && self.down.len() < BUFFER {
            match channel.read(buf) {
                Ok(0) => self.remote_eof = channel.eof(),
                Ok(n) => self.down.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => {}
                Err(_) => failed = true,
            }
            progress |= self.remote_eof || !self.down.is_empty();
        }
        if !self.down.is_empty() {
            match self.local.write(&self.down) {
                Ok(n) => {
                    self.down.drain(..n);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                // The client went away: nothing more to deliver.
                Err(_) => failed = true,
            }
        }
        // Done when the far side finished and all it said was delivered, or on a failure.
        if failed || (self.remote_eof && self.down.is_empty()) {
            let State::Open(channel) = std::mem::replace(&mut self.state, State::Gone) else {
                unreachable!()
            };
            self.state = State::Closing(channel);
            progress = true;
        }
        progress
    }

    fn close(&mut self) -> bool {
        let State::Closing(channel) = &mut self.state else {
            return false;
        };
        match channel.close() {
            Err(e) if eagain(&e) => false,
            _ => {
                self.state = State::Gone;
                true
            }
        }
    }
}

fn run(
    session: Session,
    mut socket: mio::net::TcpStream,
    mut poll: Poll,
    rx: Receiver<(Box<dyn LocalStream>, Dest)>,
) -> std::io::Result<()> {
    session.set_blocking(false);
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry().register(&mut socket, SSH, both)?;
    let mut events = Events::with_capacity(64);
    let mut conns: Vec<Conn> = Vec::new();
    let mut next = 0usize;
    let mut buf = vec![0u8; BUFFER];
    loop {
        let mut progress = false;
        loop {
            match rx.try_recv() {
                Ok((mut local, dest)) => {
                    let token = Token(next);
                    next += 1;
                    poll.registry().register(&mut local, token, both)?;
                    conns.push(Conn {
                        local,
                        dest,
                        state: State::Opening,
                        up: Vec::new(),
                        down: Vec::new(),
                        local_eof: false,
                        eof_sent: false,
                        remote_eof: false,
                    });
                    progress = true;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                // The deployer is done with the tunnel.
                Err(mpsc::TryRecvError::Disconnected) if conns.is_empty() => return Ok(()),
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        // One channel open in progress at a time: the oldest waiting connection's.
        if let Some(conn) = conns.iter_mut().find(|c| matches!(c.state, State::Opening)) {
            progress |= conn.open(&session);
        }
        for conn in &mut conns {
            progress |= conn.pump(&mut buf) | conn.close();
        }
        conns.retain_mut(|c| {
            let gone = matches!(c.state, State::Gone);
            if gone {
                let _ = poll.registry().deregister(&mut c.local);
            }
            !gone
        });
        if !progress {
            poll.poll(&mut events, Some(TICK))?;
        }
    }
}
