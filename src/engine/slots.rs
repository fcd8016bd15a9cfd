//! The connection table shared between host threads and the loop: for every slot, the id of
//! the connection that is open in it (0 when none) and what is queued for it. Host threads
//! use it to refuse stale ids and full queues synchronously, without a round trip to the loop.
//!
//! Storage is chunked and allocated on first use, so a server configured for many
//! connections pays only for the slots it has used.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::event::ConnId;

const CHUNK: usize = 1024;
const CHUNKS: usize = 1024;
/// Most connection slots one server can have.
pub const MAX_SLOTS: usize = crate::config::MAX_CONNECTIONS;
const _: () = assert!(CHUNK * CHUNKS == MAX_SLOTS, "the table holds exactly MAX_CONNECTIONS slots");

#[derive(Default)]
pub struct SlotShared {
    /// Id of the open connection in this slot, 0 when the slot holds none (or it is closing);
    /// the id with [`AWAITING_APPROVAL`] set while its upgrade waits for the host's accept or
    /// reject (no id has that bit, so the two states share the word).
    pub id: AtomicU64,
    /// Id of the connection in this slot whatever its phase (handshake to removal), 0 when none.
    pub live: AtomicU64,
    /// Cost of the slot's send queue, as the loop last published it.
    pub queued: AtomicUsize,
    /// Cost of frames host threads sent to this slot that the loop has not taken yet. Every
    /// add has exactly one matching subtract, whichever connection occupies the slot by then.
    pub in_flight: AtomicUsize,
    /// A send was refused for a full queue; the loop reports `Drain` when it empties.
    pub blocked: AtomicBool,
    /// A client connection (dialed by the host): `NotOpen` while it connects.
    pub is_client: AtomicBool,
    /// A client connection that holds sends made before it is open.
    pub holds_sends: AtomicBool,
}

/// Marks [`SlotShared::id`] as "awaiting approval" rather than open (generations stay
/// below 2^31, so no connection id has this bit).
pub const AWAITING_APPROVAL: u64 = 1 << 63;
/// Generations wrap before they reach [`AWAITING_APPROVAL`]'s bit.
const MAX_GENERATION: u32 = (1 << 31) - 1;

pub struct ConnTable {
    chunks: Box<[OnceLock<Box<[SlotShared]>>]>,
}

/// A connection id: generation in the high 32 bits, then the loop (8 bits) and the slot in
/// that loop (24 bits).
pub fn slot_of(conn: ConnId) -> usize {
    (conn & 0xff_ffff) as usize
}

/// The loop (0 to `threads` - 1) a connection lives on.
pub fn loop_of(conn: ConnId) -> usize {
    ((conn >> 24) & 0xff) as usize
}

pub fn make_id(loop_index: usize, slot: usize, generation: u32) -> ConnId {
    (u64::from(generation) << 32) | ((loop_index as u64) << 24) | slot as u64
}

impl Default for ConnTable {
    fn default() -> Self {
        ConnTable { chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect() }
    }
}

impl ConnTable {
    /// The slot's shared state, allocating its chunk on first use (loop side).
    pub fn slot(&self, slot: usize) -> &SlotShared {
        &self.chunks[slot / CHUNK].get_or_init(|| (0..CHUNK).map(|_| SlotShared::default()).collect())
            [slot % CHUNK]
    }

    fn existing(&self, slot: usize) -> Option<&SlotShared> {
        Some(&self.chunks.get(slot / CHUNK)?.get()?[slot % CHUNK])
    }

    /// The slot of `conn` if `conn` awaits handshake approval right now.
    pub fn pending(&self, conn: ConnId) -> Option<&SlotShared> {
        self.existing(slot_of(conn)).filter(|s| conn != 0 && s.id.load(Ordering::Acquire) == conn | AWAITING_APPROVAL)
    }

    /// The slot of `conn` if `conn` exists (any phase) right now.
    pub fn live(&self, conn: ConnId) -> Option<&SlotShared> {
        self.existing(slot_of(conn)).filter(|s| conn != 0 && s.live.load(Ordering::Acquire) == conn)
    }

    /// The slot of `conn` if `conn` is open right now.
    pub fn open(&self, conn: ConnId) -> Option<&SlotShared> {
        self.existing(slot_of(conn)).filter(|s| conn != 0 && s.id.load(Ordering::Acquire) == conn)
    }
}

/// Hands out slots and their generations. Shared by the loop (accepted connections) and host
/// threads (client connections get their id before the loop has seen them).
pub struct SlotAllocator {
    loop_index: usize,
    free: Vec<usize>,
    /// Generation of each slot ever used (the next id made from it).
    generations: Vec<u32>,
}

impl SlotAllocator {
    pub fn for_loop(loop_index: usize) -> Self {
        SlotAllocator { loop_index, free: Vec::new(), generations: Vec::new() }
    }

    /// A fresh id in a free slot, or None when every slot is in use.
    pub fn allocate(&mut self) -> Option<ConnId> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None if self.generations.len() < MAX_SLOTS => {
                self.generations.push(1);
                self.generations.len() - 1
            }
            None => return None,
        };
        Some(make_id(self.loop_index, slot, self.generations[slot]))
    }

    /// The slot is free again; its next id differs from every earlier one.
    pub fn release(&mut self, slot: usize) {
        let generation = &mut self.generations[slot];
        *generation = if *generation >= MAX_GENERATION { 1 } else { *generation + 1 };
        self.free.push(slot);
    }
}
