//! loadgen: single-threaded, closed-loop WebSocket (and raw TCP) load generator.
//!
//! Modes (one JSON object per result line on stdout; progress/errors go to stderr):
//!
//!   echo       N connections, each keeps `--depth` binary messages of `--size` bytes in flight;
//!              measures messages/s and round-trip latency percentiles.
//!   raw        like echo, but no WebSocket handshake: the same masked frame bytes are written
//!              to a plain TCP echo server and the same number of bytes is expected back.
//!   broadcast  `--conns` clients (default 100); the first `--senders` (default 10) send, each
//!              with at most `--depth` messages outstanding. A message is complete when the last
//!              client (never a sender) receives it. Counts deliveries/s over all clients.
//!   idle       opens connections (handshake complete) up to each checkpoint in `--conns`
//!              (e.g. `1000,10000`), reads the server's VmRSS at each, holds, exits.
//!   game       `--conns` clients of examples/c/game_server (60 Hz loop), client i in room
//!              i % `--rooms` (path `/?room=K`); each sends an 8-byte input (two LE f32) at
//!              `--input-hz` (phases spread evenly) and validates every snapshot
//!              (u32 tick | u64 server CLOCK_REALTIME us | u32 count | count*12 bytes). Delivery
//!              latency = our CLOCK_REALTIME at read() - the snapshot's server time. The measured
//!              window is counted in server ticks: it starts at the first 300-tick boundary
//!              (the server's report window) after the warmup and spans round(duration*60)
//!              ticks; the load then continues up to the next 300-tick boundary so that the
//!              server's `ticks 300 ...` lines that cover the window saw the same load.
//!
//! With `--server-pid PID` the server's CPU time (utime+stime of all threads, from
//! /proc/PID/stat) is sampled exactly at the measured window's edges, and its VmRSS in idle mode.

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Echo,
    Raw,
    Broadcast,
    Idle,
    Game,
}

struct Args {
    mode: Mode,
    addr: SocketAddr,
    host: String,
    path: String,
    conns: Vec<usize>,
    depth: usize,
    size: usize,
    duration: f64,
    warmup: f64,
    senders: usize,
    server_pid: Option<i32>,
    label: String,
    hold: f64,
    settle: f64,
    concurrency: usize,
    timeout: f64,
    raw: bool,
    rooms: usize,
    input_hz: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen --mode echo|raw|broadcast|idle --port N [--host 127.0.0.1] [--path /]\n\
         \x20      [--conns N | --conns N1,N2,.. (idle)] [--depth D] [--size BYTES]\n\
         \x20      [--duration SECS] [--warmup SECS] [--senders K] [--server-pid PID]\n\
         \x20      [--label NAME] [--hold SECS] [--settle SECS] [--concurrency N] [--timeout SECS]\n\
         \x20      [--raw] (idle: plain TCP connections, no handshake; implied by --mode raw)\n\
         \x20      game: [--rooms R] [--input-hz HZ] (with --conns N --duration --warmup)"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut mode = None;
    let mut host = "127.0.0.1".to_string();
    let mut port: Option<u16> = None;
    let mut path = "/".to_string();
    let mut conns: Option<Vec<usize>> = None;
    let mut depth = 1;
    let mut size = 64;
    let mut duration = 10.0;
    let mut warmup = 2.0;
    let mut senders = 10;
    let mut server_pid = None;
    let mut label = String::new();
    let mut hold = 1.0;
    let mut settle = 1.0;
    let mut concurrency = 64; // in-progress connects; more overflows small listen queues (SYN retransmits)
    let mut timeout = 120.0;
    let mut raw = false;
    let mut rooms = 10;
    let mut input_hz = 20.0;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        let mut val = || -> String {
            i += 1;
            argv.get(i).cloned().unwrap_or_else(|| usage())
        };
        fn num<T: std::str::FromStr>(s: String) -> T {
            s.parse().unwrap_or_else(|_| {
                eprintln!("loadgen: bad number {s}");
                std::process::exit(2)
            })
        }
        match a {
            "--mode" => {
                mode = Some(match val().as_str() {
                    "echo" => Mode::Echo,
                    "raw" => Mode::Raw,
                    "broadcast" => Mode::Broadcast,
                    "idle" => Mode::Idle,
                    "game" => Mode::Game,
                    _ => usage(),
                })
            }
            "--host" => host = val(),
            "--port" => port = Some(num(val())),
            "--url" => {
                // ws://host:port/path
                let u = val();
                let rest = u.strip_prefix("ws://").unwrap_or(&u).to_string();
                let (hp, p) = match rest.find('/') {
                    Some(k) => (rest[..k].to_string(), rest[k..].to_string()),
                    None => (rest.clone(), "/".to_string()),
                };
                path = p;
                let (h, pt) = hp.rsplit_once(':').unwrap_or_else(|| usage());
                host = h.to_string();
                port = Some(num(pt.to_string()));
            }
            "--path" => path = val(),
            "--conns" => conns = Some(val().split(',').map(|s| num(s.to_string())).collect()),
            "--depth" => depth = num(val()),
            "--size" => size = num(val()),
            "--duration" => duration = num(val()),
            "--warmup" => warmup = num(val()),
            "--senders" => senders = num(val()),
            "--server-pid" => server_pid = Some(num(val())),
            "--label" => label = val(),
            "--hold" => hold = num(val()),
            "--settle" => settle = num(val()),
            "--concurrency" => concurrency = num(val()),
            "--timeout" => timeout = num(val()),
            "--raw" => raw = true,
            "--rooms" => rooms = num(val()),
            "--input-hz" => input_hz = num(val()),
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("loadgen: unknown argument {a}");
                usage()
            }
        }
        i += 1;
    }
    let mode = mode.unwrap_or_else(|| usage());
    let port = port.unwrap_or_else(|| usage());
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .unwrap_or_else(|| {
            eprintln!("loadgen: cannot resolve {host}:{port}");
            std::process::exit(2)
        });
    let conns = conns.unwrap_or_else(|| match mode {
        Mode::Echo | Mode::Raw => vec![50],
        Mode::Broadcast => vec![100],
        Mode::Idle | Mode::Game => vec![1000],
    });
    if mode == Mode::Broadcast {
        if size < 4 {
            size = 4;
        }
        if conns[0] <= senders {
            eprintln!("loadgen: broadcast needs --conns > --senders");
            std::process::exit(2);
        }
    }
    Args {
        mode,
        addr,
        host: format!("{host}:{port}"),
        path,
        conns,
        depth: depth.max(1),
        size,
        duration,
        warmup,
        senders,
        server_pid,
        label,
        hold,
        settle,
        concurrency: concurrency.max(1),
        timeout,
        raw: raw || mode == Mode::Raw,
        rooms: rooms.max(1),
        input_hz,
    }
}

// ---------------------------------------------------------------- /proc sampling

fn clk_tck() -> f64 {
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime+stime (+cutime+cstime) of a whole process (all threads), in seconds.
fn proc_cpu_s(pid: i32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14 -> index 11.
    let mut ticks = 0u64;
    for k in 11..15 {
        ticks += f.get(k)?.parse::<u64>().ok()?;
    }
    Some(ticks as f64 / clk_tck())
}

fn proc_rss_kb(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            return v.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    None
}

fn self_cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn raise_nofile() {
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

// ---------------------------------------------------------------- frames

fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x82); // FIN + binary
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
}

fn control_frame(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    let payload = &payload[..payload.len().min(125)];
    out.push(0x80 | opcode);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
}

fn make_payload(size: usize, sender: u32) -> Vec<u8> {
    let mut p: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    if p.len() >= 4 {
        p[..4].copy_from_slice(&sender.to_le_bytes());
    }
    p
}

// ---------------------------------------------------------------- connections

#[derive(PartialEq, Clone, Copy, Debug)]
enum St {
    Pending, // not yet started (idle mode staggers connects)
    Connecting,
    Handshaking,
    Open,
    Dead,
}

struct Conn {
    sock: Option<TcpStream>,
    st: St,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    sent: VecDeque<Instant>,
    raw_bytes: usize,
    frag_len: usize,
    done: u64, // messages completed in the measured window (echo: own; broadcast: as sender)
    dirty: bool,
    frag: Vec<u8>,          // game: payload of a fragmented message so far
    last_tick: Option<u32>, // game: last snapshot tick received
}

impl Conn {
    fn new() -> Self {
        Conn {
            sock: None,
            st: St::Pending,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            sent: VecDeque::new(),
            raw_bytes: 0,
            frag_len: 0,
            done: 0,
            dirty: false,
            frag: Vec::new(),
            last_tick: None,
        }
    }
}

struct Stats {
    hist: Histogram<u64>,
    msgs: u64,     // completed round trips (echo/raw) or observer completions (broadcast)
    delivered: u64, // broadcast: frames received over all clients
    measuring: bool,
}

/// Game mode: the measured window in server ticks and what was seen in it.
#[derive(Default)]
struct Game {
    max_tick: Option<u32>,
    start_tick: Option<u32>, // S: first tick of the window (a multiple of 300), set after warmup
    end_tick: u32,           // E: first tick after the window
    started: Option<(Instant, Option<f64>, f64)>, // when tick >= S first arrived: time, server cpu, own cpu
    ended: Option<(Instant, Option<f64>, f64)>,   // when tick >= E first arrived
    received: u64,        // snapshots with S <= tick < E (all clients)
    missed: u64,          // per-connection tick gaps inside the window
    count_mismatch: u64,  // snapshots in the window whose player count != open clients in that room
    negative: u64,        // receipt time before the server time (clock trouble): recorded as 0
    ticks: std::collections::HashSet<u32>,
    room_open: Vec<u32>,  // open clients per room
    inputs_sent: u64,
    input_t0: Option<Instant>,
    input_k: u64,         // next input to send overall (client k % conns)
}

struct Lg {
    a: Args,
    poll: Poll,
    conns: Vec<Conn>,
    frames: Vec<Vec<u8>>, // per sender (broadcast) or [0] for echo/raw
    payloads: Vec<Vec<u8>>, // unmasked payload of each frame, to verify what comes back
    handshake: Vec<u8>,
    open: usize,
    dead: usize,
    in_progress: usize,
    next_start: usize,
    sending: bool,
    stats: Stats,
    dirty: Vec<usize>,
    scratch: Vec<u8>,
    first_error: Option<String>,
    game: Game,
    recv_us: u64, // game: CLOCK_REALTIME us right after the current read()
}

enum Ev {
    Msg(usize, u32),             // conn, sender id (broadcast)
    Snap(usize, u32, u64, u32), // game: conn, tick, server us, player count
}

fn realtime_us() -> u64 {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Validates one snapshot: u32 tick | u64 server us | u32 count | count * (u32, f32, f32), LE.
fn parse_snapshot(p: &[u8]) -> Result<(u32, u64, u32), String> {
    if p.len() < 16 {
        return Err(format!("snapshot of {} bytes (< 16-byte header)", p.len()));
    }
    let tick = u32::from_le_bytes(p[0..4].try_into().unwrap());
    let us = u64::from_le_bytes(p[4..12].try_into().unwrap());
    let count = u32::from_le_bytes(p[12..16].try_into().unwrap());
    if p.len() != 16 + 12 * count as usize {
        return Err(format!("snapshot of {} bytes with count {count} (expected {})", p.len(), 16 + 12 * count as usize));
    }
    if count == 0 {
        return Err("snapshot with 0 players".into());
    }
    Ok((tick, us, count))
}

impl Lg {
    fn fail(&mut self, i: usize, why: String) {
        let c = &mut self.conns[i];
        if c.st == St::Dead {
            return;
        }
        if c.st == St::Connecting || c.st == St::Handshaking {
            self.in_progress -= 1;
        }
        if c.st == St::Open {
            self.open -= 1;
            if self.a.mode == Mode::Game {
                self.game.room_open[i % self.a.rooms] -= 1;
            }
        }
        c.st = St::Dead;
        if let Some(mut s) = c.sock.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        self.dead += 1;
        if self.first_error.is_none() {
            eprintln!("loadgen: connection {i}: {why}");
            self.first_error = Some(why);
        }
    }

    fn start_conn(&mut self, i: usize) {
        match TcpStream::connect(self.a.addr) {
            Ok(mut s) => {
                let _ = s.set_nodelay(true);
                self.poll
                    .registry()
                    .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                    .expect("register");
                let c = &mut self.conns[i];
                c.sock = Some(s);
                c.st = St::Connecting;
                self.in_progress += 1;
            }
            Err(e) => {
                self.conns[i].st = St::Connecting;
                self.in_progress += 1;
                self.fail(i, format!("connect: {e}"));
            }
        }
    }

    fn start_more(&mut self, target: usize) {
        while self.next_start < target && self.in_progress < self.a.concurrency {
            let i = self.next_start;
            self.next_start += 1;
            self.start_conn(i);
        }
    }

    fn mark_dirty(&mut self, i: usize) {
        if !self.conns[i].dirty {
            self.conns[i].dirty = true;
            self.dirty.push(i);
        }
    }

    fn queue_msg(&mut self, i: usize, frame_idx: usize) {
        let c = &mut self.conns[i];
        c.wbuf.extend_from_slice(&self.frames[frame_idx]);
        c.sent.push_back(Instant::now());
        self.mark_dirty(i);
    }

    fn flush(&mut self, i: usize) {
        let c = &mut self.conns[i];
        c.dirty = false;
        let Some(s) = c.sock.as_mut() else { return };
        while c.wpos < c.wbuf.len() {
            match s.write(&c.wbuf[c.wpos..]) {
                Ok(0) => {
                    self.fail(i, "write returned 0".into());
                    return;
                }
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("write: {e}"));
                    return;
                }
            }
        }
        if c.wpos == c.wbuf.len() {
            c.wbuf.clear();
            c.wpos = 0;
        } else if c.wpos > 65536 {
            c.wbuf.drain(..c.wpos);
            c.wpos = 0;
        }
    }

    fn on_open(&mut self, i: usize) {
        self.conns[i].st = St::Open;
        self.in_progress -= 1;
        self.open += 1;
        if self.a.mode == Mode::Game {
            self.game.room_open[i % self.a.rooms] += 1;
        }
        if self.sending {
            self.prime(i);
        }
    }

    /// Put the initial `depth` messages in flight on a connection that sends.
    fn prime(&mut self, i: usize) {
        match self.a.mode {
            Mode::Echo | Mode::Raw => {
                for _ in 0..self.a.depth {
                    self.queue_msg(i, 0);
                }
            }
            Mode::Broadcast if i < self.a.senders => {
                for _ in 0..self.a.depth {
                    self.queue_msg(i, i);
                }
            }
            _ => {}
        }
    }

    fn handle(&mut self, i: usize, readable: bool, writable: bool) {
        let st = self.conns[i].st;
        if st == St::Dead || st == St::Pending {
            return;
        }
        if st == St::Connecting {
            if !(readable || writable) {
                return;
            }
            let s = self.conns[i].sock.as_mut().unwrap();
            match s.take_error() {
                Ok(Some(e)) | Err(e) => {
                    self.fail(i, format!("connect: {e}"));
                    return;
                }
                Ok(None) => {}
            }
            match s.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return,
                Err(e) => {
                    self.fail(i, format!("connect: {e}"));
                    return;
                }
            }
            if self.a.raw {
                self.on_open(i);
            } else {
                self.conns[i].st = St::Handshaking;
                let hs = if self.a.mode == Mode::Game {
                    let p = &self.a.path;
                    let sep = if p.contains('?') { '&' } else { '?' };
                    String::from_utf8_lossy(&self.handshake)
                        .replacen(&format!("GET {p} "), &format!("GET {p}{sep}room={} ", i % self.a.rooms), 1)
                        .into_bytes()
                } else {
                    self.handshake.clone()
                };
                self.conns[i].wbuf.extend_from_slice(&hs);
                self.mark_dirty(i);
            }
        }
        if writable {
            self.mark_dirty(i);
        }
        if readable {
            self.read(i);
        }
    }

    fn read(&mut self, i: usize) {
        let mut events: Vec<Ev> = Vec::new();
        loop {
            let c = &mut self.conns[i];
            let Some(s) = c.sock.as_mut() else { return };
            let r = s.read(&mut self.scratch);
            if self.a.mode == Mode::Game {
                self.recv_us = realtime_us();
            }
            match r {
                Ok(0) => {
                    self.fail(i, "server closed the connection".into());
                    return;
                }
                Ok(n) => {
                    if self.a.raw {
                        c.raw_bytes += n;
                        let fl = self.frames[0].len();
                        while c.raw_bytes >= fl {
                            c.raw_bytes -= fl;
                            events.push(Ev::Msg(i, 0));
                        }
                    } else {
                        c.rbuf.extend_from_slice(&self.scratch[..n]);
                    }
                    // A short read drained the socket: skip the read() that would return EAGAIN
                    // (edge-triggered epoll reports data that arrives later as a new event).
                    if n < self.scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("read: {e}"));
                    return;
                }
            }
        }
        if !self.a.raw {
            if self.conns[i].st == St::Handshaking {
                let c = &mut self.conns[i];
                let Some(end) = find(&c.rbuf, b"\r\n\r\n") else {
                    if c.rbuf.len() > 16384 {
                        self.fail(i, "handshake response too large".into());
                    }
                    return;
                };
                let head = String::from_utf8_lossy(&c.rbuf[..end]).to_string();
                let status = head.lines().next().unwrap_or("").to_string();
                if !status.split_whitespace().nth(1).map_or(false, |s| s == "101") {
                    self.fail(i, format!("handshake refused: {status}"));
                    return;
                }
                c.rbuf.drain(..end + 4);
                self.on_open(i);
            }
            if let Err(e) = self.parse_frames(i, &mut events) {
                self.fail(i, e);
                return;
            }
        }
        for ev in events {
            self.on_message(ev);
        }
    }

    fn parse_frames(&mut self, i: usize, events: &mut Vec<Ev>) -> Result<(), String> {
        let bcast = self.a.mode == Mode::Broadcast;
        let game = self.a.mode == Mode::Game;
        let expect_len = self.a.size;
        let c = &mut self.conns[i];
        let buf = &c.rbuf;
        let mut pos = 0;
        let mut pongs: Vec<Vec<u8>> = Vec::new();
        loop {
            let b = &buf[pos..];
            if b.len() < 2 {
                break;
            }
            let fin = b[0] & 0x80 != 0;
            let op = b[0] & 0x0f;
            let masked = b[1] & 0x80 != 0;
            let mut len = (b[1] & 0x7f) as usize;
            let mut h = 2;
            if len == 126 {
                if b.len() < 4 {
                    break;
                }
                len = u16::from_be_bytes([b[2], b[3]]) as usize;
                h = 4;
            } else if len == 127 {
                if b.len() < 10 {
                    break;
                }
                len = u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize;
                h = 10;
            }
            let mut key = [0u8; 4];
            if masked {
                if b.len() < h + 4 {
                    break;
                }
                key.copy_from_slice(&b[h..h + 4]);
                h += 4;
            }
            if b.len() < h + len {
                break;
            }
            let payload = &b[h..h + len];
            let unmask = |k: usize| if masked { payload[k] ^ key[k & 3] } else { payload[k] };
            match op {
                0x0 | 0x1 | 0x2 if game => {
                    if masked {
                        return Err("server sent a masked frame".into());
                    }
                    if op == 0x1 || (op == 0) != (c.frag_len != 0) {
                        return Err("text frame or bad fragmentation (snapshots are binary)".into());
                    }
                    let snap = if fin && op != 0 {
                        parse_snapshot(payload)?
                    } else {
                        c.frag.extend_from_slice(payload);
                        c.frag_len = 1; // a fragmented message is in progress
                        if !fin {
                            pos += h + len;
                            continue;
                        }
                        c.frag_len = 0;
                        let r = parse_snapshot(&c.frag);
                        c.frag.clear();
                        r?
                    };
                    events.push(Ev::Snap(i, snap.0, snap.1, snap.2));
                }
                0x0 | 0x1 | 0x2 => {
                    let whole = fin && op != 0 && c.frag_len == 0;
                    c.frag_len += len;
                    if fin {
                        let total = std::mem::replace(&mut c.frag_len, 0);
                        let sender = if bcast && len >= 4 && op != 0 {
                            u32::from_le_bytes([unmask(0), unmask(1), unmask(2), unmask(3)])
                        } else {
                            0
                        };
                        if total != expect_len {
                            return Err(format!("message of {total} bytes, expected {expect_len}"));
                        }
                        if whole && !masked {
                            let want = &self.payloads[(sender as usize).min(self.payloads.len() - 1)];
                            if payload != &want[..] {
                                return Err("echoed payload differs from what was sent".into());
                            }
                        }
                        events.push(Ev::Msg(i, sender));
                    }
                }
                0x8 => {
                    let code = if len >= 2 { ((unmask(0) as u16) << 8) | unmask(1) as u16 } else { 0 };
                    return Err(format!("server sent close frame (code {code})"));
                }
                0x9 => pongs.push((0..len).map(unmask).collect()),
                0xA => {}
                _ => return Err(format!("bad opcode {op}")),
            }
            pos += h + len;
        }
        c.rbuf.drain(..pos);
        for p in pongs {
            control_frame(0xA, &p, &mut c.wbuf);
        }
        if c.wbuf.len() > c.wpos {
            self.mark_dirty(i);
        }
        Ok(())
    }

    fn on_snapshot(&mut self, i: usize, tick: u32, server_us: u64, count: u32) {
        let prev = self.conns[i].last_tick.replace(tick);
        if let Some(p) = prev {
            if tick <= p {
                self.fail(i, format!("snapshot tick {tick} after tick {p}"));
                return;
            }
        }
        let g = &mut self.game;
        g.max_tick = Some(g.max_tick.map_or(tick, |m| m.max(tick)));
        let Some(s) = g.start_tick else { return };
        if tick >= s && g.started.is_none() {
            g.started = Some((Instant::now(), self.a.server_pid.and_then(proc_cpu_s), self_cpu_s()));
        }
        if tick >= g.end_tick && g.ended.is_none() {
            g.ended = Some((Instant::now(), self.a.server_pid.and_then(proc_cpu_s), self_cpu_s()));
        }
        if let Some(p) = prev {
            // ticks this client missed inside the window
            let lo = (p + 1).max(s);
            let hi = tick.min(g.end_tick);
            if hi > lo {
                g.missed += (hi - lo) as u64;
            }
        }
        if tick < s || tick >= g.end_tick {
            return;
        }
        g.received += 1;
        g.ticks.insert(tick);
        if count != g.room_open[i % self.a.rooms] {
            g.count_mismatch += 1;
        }
        let now = self.recv_us;
        if now < server_us {
            g.negative += 1;
            self.stats.hist.saturating_record(0);
        } else {
            self.stats.hist.saturating_record((now - server_us) * 1000);
        }
    }

    /// Game: send every input due by now (client k % conns at t0 + k / (conns * hz)).
    fn send_inputs(&mut self) {
        let n = self.conns.len() as u64;
        let Some(t0) = self.game.input_t0 else { return };
        if self.a.input_hz <= 0.0 {
            return;
        }
        let step = 1.0 / (self.a.input_hz * n as f64);
        let el = t0.elapsed().as_secs_f64();
        while (self.game.input_k as f64) * step <= el {
            let k = self.game.input_k;
            self.game.input_k += 1;
            let i = (k % n) as usize;
            if self.conns[i].st != St::Open {
                continue;
            }
            let a = (k / n) as f32 * 0.1 + i as f32;
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&(a.cos() * 3.0).to_le_bytes());
            p[4..].copy_from_slice(&(a.sin() * 3.0).to_le_bytes());
            let c = &mut self.conns[i];
            encode_frame(&p, &mut c.wbuf);
            self.game.inputs_sent += 1;
            self.mark_dirty(i);
        }
    }

    /// Game: how long poll may sleep before the next input is due (at most `cap`).
    fn input_wait(&self, cap: Duration) -> Duration {
        let Some(t0) = self.game.input_t0 else { return cap };
        if self.a.input_hz <= 0.0 {
            return cap;
        }
        let due = self.game.input_k as f64 / (self.a.input_hz * self.conns.len() as f64);
        let left = due - t0.elapsed().as_secs_f64();
        // 1 ms granularity: inputs due within the same millisecond go out in one turn
        Duration::from_secs_f64(left.max(0.001)).min(cap)
    }

    fn on_message(&mut self, ev: Ev) {
        let (i, sender) = match ev {
            Ev::Msg(i, s) => (i, s),
            Ev::Snap(i, t, us, n) => return self.on_snapshot(i, t, us, n),
        };
        let now = Instant::now();
        match self.a.mode {
            Mode::Echo | Mode::Raw => {
                let t0 = self.conns[i].sent.pop_front();
                if self.stats.measuring {
                    self.stats.msgs += 1;
                    self.conns[i].done += 1;
                    if let Some(t0) = t0 {
                        self.stats.hist.saturating_record((now - t0).as_nanos() as u64);
                    }
                }
                if self.sending {
                    self.queue_msg(i, 0);
                }
            }
            Mode::Broadcast => {
                if self.stats.measuring {
                    self.stats.delivered += 1;
                }
                let observer = self.a.conns[0] - 1;
                let s = sender as usize;
                if i == observer && s < self.a.senders {
                    let t0 = self.conns[s].sent.pop_front();
                    if self.stats.measuring {
                        self.stats.msgs += 1;
                        self.conns[s].done += 1;
                        if let Some(t0) = t0 {
                            self.stats.hist.saturating_record((now - t0).as_nanos() as u64);
                        }
                    }
                    if self.sending && self.conns[s].st == St::Open {
                        self.queue_msg(s, s);
                    }
                }
            }
            Mode::Idle | Mode::Game => {}
        }
    }

    fn turn(&mut self, events: &mut Events, timeout: Duration) {
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                panic!("poll: {e}");
            }
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let r = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let w = ev.is_writable() || ev.is_error();
            self.handle(i, r, w);
        }
        while let Some(i) = self.dirty.pop() {
            self.flush(i);
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    if h.len() == 0 {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn fnum(x: f64) -> String {
    if x.is_finite() {
        format!("{:.3}", x)
    } else {
        "null".into()
    }
}

fn main() {
    raise_nofile();
    let a = parse_args();
    let total = *a.conns.iter().max().unwrap();
    let n_frames = if a.mode == Mode::Broadcast { a.senders } else { 1 };
    let payloads: Vec<Vec<u8>> = (0..n_frames).map(|s| make_payload(a.size, s as u32)).collect();
    let frames: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| {
            let mut f = Vec::new();
            encode_frame(p, &mut f);
            f
        })
        .collect();
    let handshake = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        a.path, a.host
    )
    .into_bytes();
    let mut lg = Lg {
        poll: Poll::new().expect("poll"),
        conns: (0..total).map(|_| Conn::new()).collect(),
        frames,
        payloads,
        handshake,
        open: 0,
        dead: 0,
        in_progress: 0,
        next_start: 0,
        sending: false,
        stats: Stats {
            hist: Histogram::new_with_bounds(1, 120_000_000_000, 3).unwrap(),
            msgs: 0,
            delivered: 0,
            measuring: false,
        },
        dirty: Vec::new(),
        scratch: vec![0u8; 256 * 1024],
        first_error: None,
        game: Game::default(),
        recv_us: 0,
        a,
    };
    let mut events = Events::with_capacity(4096);
    let label = json_str(&lg.a.label);
    let mode_name = format!("{:?}", lg.a.mode).to_lowercase();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(lg.a.timeout);
    let tick = Duration::from_millis(5);

    if lg.a.mode == Mode::Idle {
        let pid = lg.a.server_pid;
        // One warm-up connection first: what the server makes or pages in once (code first
        // run, per-loop buffers, allocator arenas) is not a cost per connection, so the base
        // is taken with it open and it is not counted below.
        while lg.open + lg.dead < 1 && Instant::now() < deadline {
            lg.start_more(1);
            lg.turn(&mut events, tick);
        }
        let warm = lg.open;
        std::thread::sleep(Duration::from_secs_f64(lg.a.settle.min(0.5)));
        let rss0 = pid.and_then(proc_rss_kb);
        let checkpoints = lg.a.conns.clone();
        for &cp in &checkpoints {
            let t0 = Instant::now();
            while lg.open + lg.dead < cp && Instant::now() < deadline {
                lg.start_more(cp);
                lg.turn(&mut events, tick);
            }
            let open_s = t0.elapsed().as_secs_f64();
            // keep servicing (pings) while the server settles
            let settle_end = Instant::now() + Duration::from_secs_f64(lg.a.settle);
            while Instant::now() < settle_end {
                lg.turn(&mut events, tick);
            }
            let rss = pid.and_then(proc_rss_kb);
            let per_conn = match (rss0, rss) {
                (Some(b), Some(r)) if lg.open > warm => (r as f64 - b as f64) * 1024.0 / (lg.open - warm) as f64,
                _ => f64::NAN,
            };
            println!(
                "{{\"mode\":\"idle\",\"label\":{label},\"target\":{cp},\"open\":{},\"failed\":{},\"open_s\":{},\"rss_base_kb\":{},\"rss_kb\":{},\"rss_per_conn_bytes\":{},\"error\":{}}}",
                lg.open,
                lg.dead,
                fnum(open_s),
                rss0.map_or("null".into(), |v| v.to_string()),
                rss.map_or("null".into(), |v| v.to_string()),
                fnum(per_conn),
                lg.first_error.as_deref().map_or("null".into(), json_str),
            );
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            eprintln!("loadgen: {} open ({} failed) at checkpoint {cp}", lg.open, lg.dead);
        }
        let hold_end = Instant::now() + Duration::from_secs_f64(lg.a.hold);
        while Instant::now() < hold_end {
            lg.turn(&mut events, tick);
        }
        return;
    }

    if lg.a.mode == Mode::Game {
        run_game(&mut lg, &mut events, total, deadline, &label);
        return;
    }

    // echo / raw / broadcast: connect everything, then start the closed loop.
    while lg.open + lg.dead < total && Instant::now() < deadline {
        lg.start_more(total);
        lg.turn(&mut events, tick);
    }
    if lg.open < total {
        println!(
            "{{\"mode\":\"{mode_name}\",\"label\":{label},\"error\":{}}}",
            json_str(&format!(
                "only {} of {} connections opened: {}",
                lg.open,
                total,
                lg.first_error.clone().unwrap_or_else(|| "timeout".into())
            ))
        );
        std::process::exit(1);
    }
    lg.sending = true;
    for i in 0..total {
        lg.prime(i);
    }
    while let Some(i) = lg.dirty.pop() {
        lg.flush(i);
    }
    let warm_end = Instant::now() + Duration::from_secs_f64(lg.a.warmup);
    while Instant::now() < warm_end {
        lg.turn(&mut events, tick);
    }
    lg.stats.hist.reset();
    lg.stats.measuring = true;
    let cpu0 = lg.a.server_pid.and_then(proc_cpu_s);
    let self0 = self_cpu_s();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(lg.a.duration);
    while Instant::now() < end && lg.open > 0 {
        lg.turn(&mut events, tick);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = lg.a.server_pid.and_then(proc_cpu_s);
    // Server RSS with every connection open, at the window's end (growth table: per connection).
    let rss1 = lg.a.server_pid.and_then(proc_rss_kb);
    let self1 = self_cpu_s();
    lg.stats.measuring = false;
    let server_cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let lg_cpu_pct = if elapsed > 0.2 { (self1 - self0) / elapsed * 100.0 } else { f64::NAN };
    // Fairness: messages completed per sending connection in the window.
    let n_send = if lg.a.mode == Mode::Broadcast { lg.a.senders } else { total };
    let per: Vec<u64> = lg.conns[..n_send].iter().map(|c| c.done).collect();
    let fair = format!(
        "\"conn_msgs_min\":{},\"conn_msgs_max\":{},\"stalled_conns\":{}",
        per.iter().min().unwrap_or(&0),
        per.iter().max().unwrap_or(&0),
        per.iter().filter(|&&d| d == 0).count()
    );
    let h = &lg.stats.hist;
    let lat = format!(
        "\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"mean_us\":{}",
        fnum(pct(h, 0.5)),
        fnum(pct(h, 0.99)),
        fnum(pct(h, 0.999)),
        fnum(h.max() as f64 / 1000.0),
        fnum(h.mean() / 1000.0)
    );
    let err = lg.first_error.as_deref().map_or("null".into(), json_str);
    let a = &lg.a;
    match a.mode {
        Mode::Broadcast => {
            let d = lg.stats.delivered;
            println!(
                "{{\"mode\":\"broadcast\",\"label\":{label},\"clients\":{total},\"senders\":{},\"depth\":{},\"size\":{},\"duration_s\":{},\"sends\":{},\"sends_per_s\":{},\"deliveries\":{d},\"deliveries_per_s\":{},{lat},\"server_cpu_s\":{},\"server_cpu_us_per_delivery\":{},\"server_rss_kb\":{},\"loadgen_cpu_pct\":{},\"dead\":{},{fair},\"error\":{err}}}",
                a.senders,
                a.depth,
                a.size,
                fnum(elapsed),
                lg.stats.msgs,
                fnum(lg.stats.msgs as f64 / elapsed),
                fnum(d as f64 / elapsed),
                fnum(server_cpu),
                fnum(server_cpu * 1e6 / d as f64),
                rss1.map_or("null".to_owned(), |r| r.to_string()),
                fnum(lg_cpu_pct),
                lg.dead,
            );
        }
        _ => {
            let m = lg.stats.msgs;
            println!(
                "{{\"mode\":\"{mode_name}\",\"label\":{label},\"conns\":{total},\"depth\":{},\"size\":{},\"duration_s\":{},\"msgs\":{m},\"msgs_per_s\":{},{lat},\"server_cpu_s\":{},\"server_cpu_us_per_msg\":{},\"loadgen_cpu_pct\":{},\"dead\":{},{fair},\"error\":{err}}}",
                a.depth,
                a.size,
                fnum(elapsed),
                fnum(m as f64 / elapsed),
                fnum(server_cpu),
                fnum(server_cpu * 1e6 / m as f64),
                fnum(lg_cpu_pct),
                lg.dead,
            );
        }
    }
}

fn run_game(lg: &mut Lg, events: &mut Events, total: usize, deadline: Instant, label: &str) {
    let cap = Duration::from_millis(5);
    lg.game.room_open = vec![0; lg.a.rooms];
    let err_exit = |lg: &Lg, msg: String| -> ! {
        println!("{{\"mode\":\"game\",\"label\":{label},\"conns\":{total},\"rooms\":{},\"error\":{}}}", lg.a.rooms, json_str(&msg));
        std::process::exit(1);
    };
    while lg.open + lg.dead < total && Instant::now() < deadline {
        lg.start_more(total);
        lg.turn(events, cap);
    }
    if lg.open < total {
        let e = lg.first_error.clone().unwrap_or_else(|| "timeout".into());
        err_exit(lg, format!("only {} of {} connections opened: {e}", lg.open, total));
    }
    lg.sending = true;
    lg.game.input_t0 = Some(Instant::now());
    let step = |lg: &mut Lg, events: &mut Events| {
        lg.send_inputs();
        while let Some(i) = lg.dirty.pop() {
            lg.flush(i);
        }
        let w = lg.input_wait(cap);
        lg.turn(events, w);
    };
    let warm_end = Instant::now() + Duration::from_secs_f64(lg.a.warmup);
    while Instant::now() < warm_end {
        step(lg, events);
    }
    // The window, in server ticks: from the next 300-tick boundary (the server prints a
    // `ticks 300 ...` line for ticks [300k, 300k+300)), round(duration*60) ticks long.
    let Some(cur) = lg.game.max_tick else { err_exit(lg, "no snapshot received during the warmup".into()) };
    let s = (cur / 300 + 1) * 300;
    let e = s + ((lg.a.duration * 60.0).round() as u32).max(1);
    let hold = e.div_ceil(300) * 300;
    lg.game.start_tick = Some(s);
    lg.game.end_tick = e;
    lg.stats.hist.reset();
    while lg.game.ended.is_none() && lg.open > 0 && Instant::now() < deadline {
        step(lg, events);
    }
    // stragglers: snapshots of the window's last tick still on their way to some clients
    let grace = Instant::now() + Duration::from_secs(1);
    while Instant::now() < grace && Instant::now() < deadline
        && lg.conns.iter().any(|c| c.st == St::Open && c.last_tick.map_or(true, |t| t + 1 < e))
    {
        step(lg, events);
    }
    // keep the same load until the server's report window containing the end is complete
    while lg.game.max_tick.map_or(true, |t| t < hold) && lg.open > 0 && Instant::now() < deadline {
        step(lg, events);
    }
    let g = &lg.game;
    let (Some(st), Some(en)) = (g.started, g.ended) else {
        let e = lg.first_error.clone().unwrap_or_else(|| "timeout".into());
        err_exit(lg, format!("measured window [{s}, {e}) not completed (last tick {:?}): {e}", g.max_tick));
    };
    let elapsed = (en.0 - st.0).as_secs_f64();
    let server_cpu = match (st.1, en.1) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let lg_cpu_pct = (en.2 - st.2) / elapsed * 100.0;
    let expected = total as u64 * (e - s) as u64;
    let h = &lg.stats.hist;
    let err = lg.first_error.as_deref().map_or("null".into(), json_str);
    println!(
        "{{\"mode\":\"game\",\"label\":{label},\"conns\":{total},\"rooms\":{},\"input_hz\":{},\"duration_s\":{},\"tick_start\":{s},\"tick_end\":{e},\"hold_until_tick\":{hold},\"ticks_seen\":{},\"snapshots\":{},\"expected\":{expected},\"snapshots_per_s\":{},\"expected_per_s\":{},\"missed\":{},\"count_mismatch\":{},\"negative_latency\":{},\"inputs_sent\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"mean_us\":{},\"server_cpu_s\":{},\"server_cpu_pct\":{},\"loadgen_cpu_pct\":{},\"dead\":{},\"error\":{err}}}",
        lg.a.rooms,
        fnum(lg.a.input_hz),
        fnum(elapsed),
        g.ticks.len(),
        g.received,
        fnum(g.received as f64 / elapsed),
        fnum(60.0 * total as f64),
        g.missed,
        g.count_mismatch,
        g.negative,
        g.inputs_sent,
        fnum(pct(h, 0.5)),
        fnum(pct(h, 0.99)),
        fnum(pct(h, 0.999)),
        fnum(h.max() as f64 / 1000.0),
        fnum(h.mean() / 1000.0),
        fnum(server_cpu),
        fnum(server_cpu / elapsed * 100.0),
        fnum(lg_cpu_pct),
        lg.dead,
    );
}
