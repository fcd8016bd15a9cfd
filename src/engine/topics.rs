//! Named topics (rooms): which connections are subscribed to what. A connection remembers its
//! own topics too, so leaving them all on close costs its subscriptions, not the table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::event::ConnId;

#[derive(Default)]
pub struct Topics {
    members: HashMap<Arc<str>, HashSet<ConnId>>,
    /// Each connection's topics, for leaving them all at once.
    joined: HashMap<ConnId, Vec<Arc<str>>>,
}

/// How a subscription change altered the topic itself (for bridges that follow topics).
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// The topic got its first subscriber.
    Created,
    /// The topic lost its last subscriber.
    Emptied,
}

impl Topics {
    pub fn subscribe(&mut self, conn: ConnId, topic: Arc<str>) -> Change {
        let joined = self.joined.entry(conn).or_default();
        if joined.contains(&topic) {
            return Change::None;
        }
        joined.push(topic.clone());
        let members = self.members.entry(topic).or_default();
        members.insert(conn);
        if members.len() == 1 {
            Change::Created
        } else {
            Change::None
        }
    }

    pub fn unsubscribe(&mut self, conn: ConnId, topic: &Arc<str>) -> Change {
        let Some(joined) = self.joined.get_mut(&conn) else { return Change::None };
        let Some(i) = joined.iter().position(|t| t == topic) else { return Change::None };
        joined.swap_remove(i);
        if joined.is_empty() {
            self.joined.remove(&conn);
        }
        self.leave(conn, topic)
    }

    /// Leaves every topic of `conn`; calls `emptied` for each topic left without members.
    pub fn leave_all(&mut self, conn: ConnId, mut emptied: impl FnMut(&Arc<str>)) {
        for topic in self.joined.remove(&conn).unwrap_or_default() {
            if self.leave(conn, &topic) == Change::Emptied {
                emptied(&topic);
            }
        }
    }

    fn leave(&mut self, conn: ConnId, topic: &Arc<str>) -> Change {
        let Some(members) = self.members.get_mut(topic) else { return Change::None };
        members.remove(&conn);
        if members.is_empty() {
            self.members.remove(topic);
            return Change::Emptied;
        }
        Change::None
    }

    pub fn members(&self, topic: &str) -> impl Iterator<Item = ConnId> + '_ {
        self.members.get(topic).into_iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_join_and_last_leave_are_reported() {
        let mut t = Topics::default();
        let room: Arc<str> = "room".into();
        assert_eq!(t.subscribe(1, room.clone()), Change::Created);
        assert_eq!(t.subscribe(1, room.clone()), Change::None);
        assert_eq!(t.subscribe(2, room.clone()), Change::None);
        assert_eq!(t.members("room").count(), 2);
        assert_eq!(t.unsubscribe(1, &room), Change::None);
        let mut emptied = Vec::new();
        t.leave_all(2, |topic| emptied.push(topic.to_string()));
        assert_eq!(emptied, vec!["room"]);
        assert_eq!(t.members("room").count(), 0);
        assert!(t.joined.is_empty() && t.members.is_empty());
    }
}
