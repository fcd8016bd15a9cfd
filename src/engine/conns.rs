//! The loop's connections, stored in place in chunks of slots rather than one heap block
//! each: no allocator header or rounding per connection and no holes between connections
//! left by freed handshake buffers, and growing never moves a connection. A chunk is made
//! when its first slot is used (the slot allocator hands out the lowest free slots first
//! in practice, so chunks stay full) and kept.

/// Slots per chunk: 256 × an idle connection's ~200 B is 50 KiB, made at once.
const CHUNK: usize = 256;

pub struct Conns<T> {
    chunks: Vec<Option<Box<[Option<T>]>>>,
}

impl<T> Default for Conns<T> {
    fn default() -> Self {
        Conns { chunks: Vec::new() }
    }
}

impl<T> Conns<T> {
    pub fn get(&self, slot: usize) -> Option<&T> {
        self.chunks.get(slot / CHUNK)?.as_deref()?[slot % CHUNK].as_ref()
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.chunks.get_mut(slot / CHUNK)?.as_deref_mut()?[slot % CHUNK].as_mut()
    }

    /// Puts `conn` in `slot` (empty: the slot allocator gave it out).
    pub fn insert(&mut self, slot: usize, conn: T) {
        let index = slot / CHUNK;
        if self.chunks.len() <= index {
            self.chunks.resize_with(index + 1, || None);
        }
        let chunk = self.chunks[index].get_or_insert_with(|| (0..CHUNK).map(|_| None).collect());
        debug_assert!(chunk[slot % CHUNK].is_none(), "slot {slot} is in use");
        chunk[slot % CHUNK] = Some(conn);
    }

    pub fn take(&mut self, slot: usize) -> Option<T> {
        self.chunks.get_mut(slot / CHUNK)?.as_deref_mut()?[slot % CHUNK].take()
    }

    /// One past the highest slot that may hold a connection.
    pub fn span(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Every connection with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.chunks.iter().enumerate().flat_map(|(index, chunk)| {
            chunk.iter().flat_map(move |c| c.iter().enumerate().filter_map(move |(i, conn)| Some((index * CHUNK + i, conn.as_ref()?))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_hold_their_values_across_chunks() {
        let mut conns = Conns::default();
        for slot in [0, 5, CHUNK - 1, CHUNK, 3 * CHUNK + 7] {
            conns.insert(slot, slot * 10);
        }
        assert_eq!(conns.get(5), Some(&50));
        assert_eq!(conns.get(1), None);
        assert_eq!(conns.get(2 * CHUNK), None, "a chunk never made");
        assert_eq!(conns.get(100 * CHUNK), None, "past the end");
        *conns.get_mut(CHUNK).unwrap() += 1;
        assert_eq!(conns.take(CHUNK), Some(CHUNK * 10 + 1));
        assert_eq!(conns.take(CHUNK), None);
        let all: Vec<(usize, usize)> = conns.iter().map(|(s, v)| (s, *v)).collect();
        assert_eq!(all, vec![(0, 0), (5, 50), (CHUNK - 1, (CHUNK - 1) * 10), (3 * CHUNK + 7, (3 * CHUNK + 7) * 10)]);
        assert_eq!(conns.span(), 4 * CHUNK);
    }
}
