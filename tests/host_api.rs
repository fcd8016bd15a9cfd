//! The host API every peer library has: terminate, pings with events, user data, and what
//! happens after a bug kills the loop thread.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wsembed::{Error, Event};

#[test]
fn terminate_drops_tcp_and_reports_1006() {
    let server = start(|_| {});
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    server.handle().terminate(conn).unwrap();
    let (code, _, clean) = wait_close(&server, conn);
    assert_eq!((code, clean), (1006, false));
    // No close frame: the socket just ends.
    assert!(raw.read_to_end().is_empty(), "nothing but EOF");
    assert!(matches!(server.handle().terminate(conn), Err(Error::NoSuchConnection)));
}

#[test]
fn terminate_after_close_ends_the_wait_for_the_peer() {
    let server = start(|c| c.close_timeout = Duration::from_secs(30));
    let _raw = Raw::connect(&server); // never answers the close
    let conn = wait_open(&server);
    server.handle().close(conn, 1000, "bye").unwrap();
    let started = Instant::now();
    server.handle().terminate(conn).unwrap();
    let (code, _, _) = wait_close(&server, conn);
    assert_eq!(code, 1006);
    assert!(started.elapsed() < Duration::from_secs(5), "not the 30 s close timeout");
}

#[test]
fn ping_events_carry_payloads_both_ways() {
    let server = start(|c| c.ping_events = true);
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    raw.frame(0x89, b"client-ping");
    assert_eq!(raw.read_frame(), (0x8a, b"client-ping".to_vec()), "answered by the engine");
    let data = wait_for(&server, |e| match e {
        Event::Ping { conn: c, data } if *c == conn => Some(data.clone()),
        _ => None,
    });
    assert_eq!(data, b"client-ping");
    server.handle().ping(conn, b"t=42").unwrap();
    assert_eq!(raw.read_frame(), (0x89, b"t=42".to_vec()));
    raw.frame(0x8a, b"t=42");
    let data = wait_for(&server, |e| match e {
        Event::Pong { conn: c, data } if *c == conn => Some(data.clone()),
        _ => None,
    });
    assert_eq!(data, b"t=42");
    assert!(matches!(server.handle().ping(conn, &[0; 126]), Err(Error::InvalidArgument(_))));
}

#[test]
fn user_data_follows_the_connection_until_after_its_close() {
    let server = start(|_| {});
    let mut client = connect(&server);
    let conn = wait_open(&server);
    assert_eq!(server.user_data(conn), None);
    server.handle().set_user_data(conn, 0xfeed).unwrap();
    assert_eq!(server.user_data(conn), Some(0xfeed));
    client.close(None).unwrap();
    let _ = client.flush();
    wait_close(&server, conn);
    assert_eq!(server.user_data(conn), Some(0xfeed), "still there while the host handles CLOSE");
    let _ = server.poll(Some(Duration::from_millis(10)));
    assert_eq!(server.user_data(conn), None, "gone after the next poll");
    assert!(matches!(server.handle().set_user_data(conn, 1), Err(Error::NoSuchConnection)));
}

#[test]
fn a_loop_panic_releases_a_blocked_poll_and_fails_every_later_call() {
    let server = std::sync::Arc::new(start(|_| {}));
    let _client = connect(&server);
    let conn = wait_open(&server);
    let poller = {
        let server = server.clone();
        std::thread::spawn(move || server.poll(None))
    };
    std::thread::sleep(Duration::from_millis(50)); // let it block (it must return either way)
    server.inject_loop_panic();
    let deadline = Instant::now() + DEADLINE;
    while !poller.is_finished() {
        assert!(Instant::now() < deadline, "a blocked poll must return after a loop panic");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(matches!(poller.join().unwrap(), Err(Error::Panic(_))));
    assert!(matches!(server.poll(Some(Duration::ZERO)), Err(Error::Panic(_))));
    assert!(matches!(server.handle().send_text(conn, "x"), Err(Error::Panic(_))));
    assert!(matches!(server.handle().broadcast(wsembed::MessageKind::Text, b"x", None), Err(Error::Panic(_))));
    assert!(matches!(server.stop(Duration::from_millis(100)), Err(Error::Panic(_))));
}

#[test]
fn host_driven_mode_runs_the_loop_in_poll() {
    let server = std::sync::Arc::new(start(|c| c.loop_thread = false));
    let mut client = connect_async_safe(&server);
    let conn = wait_open(&server);
    // A send from another thread wakes a poll that is blocked waiting.
    let sender = {
        let handle = server.handle();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            handle.send_text(conn, "from another thread").unwrap();
        })
    };
    let poller = {
        let server = server.clone();
        std::thread::spawn(move || server.poll(Some(Duration::from_millis(500))).map(|e| e.len()))
    };
    assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), "from another thread");
    sender.join().unwrap();
    let _ = poller.join().unwrap();
    client.send(tungstenite::Message::text("echo me")).unwrap();
    let (from, data, _) = wait_message(&server);
    assert_eq!((from, data.as_slice()), (conn, &b"echo me"[..]));
    let handle = server.handle();
    server.stop(Duration::from_secs(1)).unwrap();
    assert!(server.is_stopped());
    assert!(matches!(server.stop(Duration::ZERO), Err(Error::Stopped)));
    // A handle that outlives the stop (it holds the stopped loop) refuses sends.
    assert!(matches!(handle.send_text(conn, "late"), Err(Error::Stopped)));
    // The events left (the close) come out, then the poll says so.
    let mut polls = 0;
    while server.poll(Some(Duration::ZERO)).is_ok() {
        polls += 1;
        assert!(polls < 10, "a stopped host-driven server keeps returning events");
    }
    assert!(matches!(server.poll(Some(Duration::ZERO)), Err(Error::Stopped)));
}

/// Connects while another thread runs a host-driven server's loop (the handshake needs it).
fn connect_async_safe(server: &std::sync::Arc<wsembed::Server>) -> Client {
    let url = url(server, "/");
    let client = std::thread::spawn(move || {
        let client = tungstenite::connect(url).expect("client connects").0;
        // A lost message fails the test at the deadline instead of hanging it.
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = client.get_ref() {
            s.set_read_timeout(Some(DEADLINE)).unwrap();
        }
        client
    });
    let deadline = Instant::now() + DEADLINE;
    while !client.is_finished() {
        assert!(Instant::now() < deadline);
        server.service(Some(Duration::from_millis(10))).unwrap();
    }
    client.join().unwrap()
}

/// Host-driven mode sends no wake-up for a command while no thread waits in the loop: a
/// send from a second thread must still wake a poll that waits without a time limit, every
/// time (the poll keeps waiting in between: a send makes no event).
#[test]
fn host_driven_send_from_another_thread_wakes_a_poll_waiting_without_limit() {
    let server = std::sync::Arc::new(start(|c| c.loop_thread = false));
    let mut client = connect_async_safe(&server);
    let conn = wait_open(&server);
    let poller = {
        let server = server.clone();
        std::thread::spawn(move || server.poll(None))
    };
    for i in 0..200 {
        if i % 8 == 0 {
            // Now and then let the poll settle into its wait first.
            std::thread::sleep(Duration::from_millis(2));
        }
        let sent = Instant::now();
        server.handle().send_text(conn, &format!("n{i}")).unwrap();
        assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), format!("n{i}"));
        assert!(sent.elapsed() < Duration::from_secs(2), "send {i} took {:?}: the blocked poll was not woken", sent.elapsed());
    }
    assert!(!poller.is_finished(), "no event came, so the poll still waits");
    client.send(tungstenite::Message::text("bye")).unwrap();
    let events = poller.join().unwrap().unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Message { data, .. } if data == b"bye")), "{events:?}");
    server.stop(Duration::from_secs(1)).unwrap();
}

/// Whether `fd` is readable within `ms` milliseconds.
fn readable(fd: std::os::fd::RawFd, ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
}

/// A host that waits on the event fd itself (host-driven mode: the loop's epoll descriptor)
/// sees it readable after a send, also for a send made before it took the descriptor.
#[test]
fn host_driven_event_fd_turns_readable_for_a_send() {
    let server = std::sync::Arc::new(start(|c| c.loop_thread = false));
    let mut client = connect_async_safe(&server);
    let conn = wait_open(&server);
    // Until the loop has nothing left to do.
    let quiet = |server: &wsembed::Server| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(server.poll(Some(Duration::from_millis(20))).unwrap().is_empty());
            if !readable(server.event_fd(), 0) {
                break;
            }
            assert!(Instant::now() < deadline, "the event fd stays readable");
        }
    };
    // Sent before the descriptor was handed out: no wake-up was needed then.
    server.handle().send_text(conn, "before").unwrap();
    let fd = server.event_fd();
    assert!(readable(fd, 2000), "a send made before event_fd still makes it readable");
    assert!(server.poll(Some(Duration::ZERO)).unwrap().is_empty());
    assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), "before");
    for i in 0..20 {
        quiet(&server);
        server.handle().send_text(conn, &format!("after{i}")).unwrap();
        assert!(readable(fd, 2000), "send {i}: the event fd turns readable");
        assert!(server.poll(Some(Duration::ZERO)).unwrap().is_empty());
        assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), format!("after{i}"));
    }
    quiet(&server);
    server.stop(Duration::from_secs(1)).unwrap();
    // Stopped: the descriptor is left readable, so a host waiting on it polls and learns of it.
    assert!(readable(fd, 2000), "the event fd is readable after the stop");
}

/// Host-driven mode: a send made while no thread runs the loop goes straight into the
/// connection's queue, one made while another thread runs it takes the channel. With a
/// second thread running turns all along, one host thread's sends take both ways and must
/// still arrive in the order sent.
#[test]
fn host_driven_sends_keep_their_order_whichever_way_they_take() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const COUNT: usize = 5000;
    let server = std::sync::Arc::new(start(|c| c.loop_thread = false));
    let mut client = connect_async_safe(&server);
    let conn = wait_open(&server);
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let turns = {
        let (server, done) = (server.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                server.service(Some(Duration::from_micros(200))).unwrap();
                std::thread::yield_now(); // leaves the loop free now and then
            }
        })
    };
    let reader = std::thread::spawn(move || {
        for i in 0..COUNT {
            assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), format!("m{i}"), "out of order");
        }
        client
    });
    let handle = server.handle();
    for i in 0..COUNT {
        handle.send_text(conn, &format!("m{i}")).unwrap();
        if i % 16 == 0 {
            std::thread::yield_now();
        }
    }
    let _client = reader.join().unwrap();
    done.store(true, Ordering::Release);
    turns.join().unwrap();
    let stats = server.handle().stats();
    assert_eq!(stats.messages_out, COUNT as u64);
    server.stop(Duration::from_secs(1)).unwrap();
}
