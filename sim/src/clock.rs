//! Virtual time: the discrete-event queue that orders everything in a run.
//!
//! [`Scheduler`] holds future events keyed by `(time, insertion seq)`: events at the same
//! instant come out in the order they were scheduled, never by address or hash, so a run is
//! a pure function of its seed. Popping an event advances [`Scheduler::now`] to its time;
//! virtual time never goes backwards, and scheduling into the past is refused as caller
//! misuse. The queue is bounded: a world that floods it gets [`ScheduleError::Full`]
//! instead of growing without limit.
//!
//! This module must never read the wall clock.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use gauntlet_core::Instant;

/// Why an event could not be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The event's time is before the current virtual time; the caller computed a deadline
    /// from a stale `now` (a bug in the world, not in the input).
    #[error("event at {at} scheduled in the past (now {now})")]
    InPast {
        /// The requested time.
        at: Instant,
        /// The scheduler's current time.
        now: Instant,
    },
    /// The queue already holds its maximum number of pending events.
    #[error("event queue full ({limit} pending events)")]
    Full {
        /// The configured bound.
        limit: usize,
    },
}

/// A pending event's place in the heap: ordered by `(at, seq)` only. The event itself waits
/// in a slab slot, so a sift moves 24 bytes instead of the whole event (the largest variant
/// of the world's event enum sets the size of every one).
#[derive(Debug, Clone, Copy)]
struct Key {
    at: Instant,
    seq: u64,
    slot: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A discrete-event scheduler on virtual time, ordered by time then insertion order.
#[derive(Debug)]
pub struct Scheduler<E> {
    queue: BinaryHeap<Reverse<Key>>,
    /// Events by slot; a slot is `None` while free. Never longer than `limit`.
    slots: Vec<Option<E>>,
    /// Free slots, reused last-freed first.
    free: Vec<u32>,
    now: Instant,
    next_seq: u64,
    popped: u64,
    limit: usize,
}

impl<E> Scheduler<E> {
    /// An empty scheduler starting at `start`, holding at most `limit` pending events
    /// (a limit past `u32::MAX` slots is treated as `u32::MAX`).
    pub fn new(start: Instant, limit: usize) -> Self {
        Self {
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            now: start,
            next_seq: 0,
            popped: 0,
            limit: limit.min(u32::MAX as usize),
        }
    }

    /// Queues `event` to fire at `at` (which may equal `now`).
    pub fn schedule(&mut self, at: Instant, event: E) -> Result<(), ScheduleError> {
        if at < self.now {
            return Err(ScheduleError::InPast { at, now: self.now });
        }
        if self.queue.len() >= self.limit {
            return Err(ScheduleError::Full { limit: self.limit });
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    *s = Some(event);
                }
                slot
            }
            None => {
                // Fewer than `limit <= u32::MAX` events are pending, and every slot is in use.
                let slot = u32::try_from(self.slots.len())
                    .map_err(|_| ScheduleError::Full { limit: self.limit })?;
                self.slots.push(Some(event));
                slot
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Key { at, seq, slot }));
        Ok(())
    }

    /// Queues `event` to fire `delay` after the current time.
    pub fn schedule_after(&mut self, delay: Duration, event: E) -> Result<(), ScheduleError> {
        self.schedule(self.now.saturating_add(delay), event)
    }

    /// Removes the earliest event (ties: first scheduled) and advances `now` to its time.
    pub fn pop(&mut self) -> Option<(Instant, E)> {
        let Reverse(key) = self.queue.pop()?;
        // Every key names a filled slot: `schedule` fills it and only this pop empties it.
        let event = self
            .slots
            .get_mut(key.slot as usize)
            .and_then(Option::take)
            .unwrap_or_else(|| unreachable!("scheduler key without an event"));
        self.free.push(key.slot);
        // `schedule` refuses the past, so the queue never holds an event before `now`.
        debug_assert!(key.at >= self.now);
        self.now = key.at;
        self.popped += 1;
        Some((key.at, event))
    }

    /// The current virtual time: the time of the last popped event, or the start.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(k)| k.at)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Number of events popped so far (the run's event count).
    pub fn popped(&self) -> u64 {
        self.popped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_unix_millis(ms)
    }

    fn drain<E>(s: &mut Scheduler<E>) -> Vec<(Instant, E)> {
        std::iter::from_fn(|| s.pop()).collect()
    }

    #[test]
    fn pop_orders_by_time_then_insertion() {
        let mut s = Scheduler::new(t(0), 100);
        s.schedule(t(30), "c").unwrap();
        s.schedule(t(10), "a1").unwrap();
        s.schedule(t(20), "b").unwrap();
        s.schedule(t(10), "a2").unwrap();
        s.schedule(t(10), "a3").unwrap();
        let order: Vec<&str> = drain(&mut s).into_iter().map(|(_, e)| e).collect();
        assert_eq!(order, ["a1", "a2", "a3", "b", "c"]);
    }

    #[test]
    fn ties_keep_insertion_order_across_many_events() {
        let mut s = Scheduler::new(t(0), 10_000);
        for i in 0..1000u32 {
            s.schedule(t(u64::from(i % 3)), i).unwrap();
        }
        let got: Vec<(Instant, u32)> = drain(&mut s);
        let mut expected: Vec<(Instant, u32)> =
            (0..1000u32).map(|i| (t(u64::from(i % 3)), i)).collect();
        expected.sort_by_key(|(at, i)| (*at, *i));
        assert_eq!(got, expected);
    }

    #[test]
    fn pop_advances_now_and_counts() {
        let mut s = Scheduler::new(t(5), 10);
        assert_eq!(s.now(), t(5));
        s.schedule(t(7), ()).unwrap();
        s.schedule_after(Duration::from_millis(1), ()).unwrap();
        assert_eq!(s.peek_time(), Some(t(6)));
        assert_eq!(s.pop(), Some((t(6), ())));
        assert_eq!(s.now(), t(6));
        assert_eq!(s.pop(), Some((t(7), ())));
        assert_eq!(s.now(), t(7));
        assert_eq!(s.popped(), 2);
        assert_eq!(s.pop(), None);
        assert_eq!(s.now(), t(7));
    }

    #[test]
    fn schedule_in_past_is_refused_and_time_never_goes_back() {
        let mut s = Scheduler::new(t(0), 10);
        s.schedule(t(10), 1).unwrap();
        s.pop();
        assert_eq!(
            s.schedule(t(9), 2),
            Err(ScheduleError::InPast {
                at: t(9),
                now: t(10)
            })
        );
        assert!(s.is_empty());
        s.schedule(t(10), 3).unwrap();
        assert_eq!(s.pop(), Some((t(10), 3)));
    }

    #[test]
    fn interleaved_schedule_and_pop_reuses_slots_and_keeps_order() {
        let mut s = Scheduler::new(t(0), 100);
        let mut popped = Vec::new();
        for round in 0..50u64 {
            // Two events per round, one of them tying with an event of the previous round.
            s.schedule(t(round + 2), (round, 'b')).unwrap();
            s.schedule(t(round + 1), (round, 'a')).unwrap();
            popped.push(s.pop().unwrap());
        }
        popped.extend(drain(&mut s));
        let mut expected: Vec<(Instant, (u64, char))> = (0..50u64)
            .flat_map(|r| [(t(r + 2), (r, 'b')), (t(r + 1), (r, 'a'))])
            .collect();
        // Ties at one instant: the earlier round's 'b' was scheduled before this round's 'a'.
        expected.sort_by_key(|(at, (r, c))| (*at, *r, *c));
        assert_eq!(popped, expected);
        // At most 51 events were ever pending at once, so no more slots exist than that.
        assert!(s.slots.len() <= 51, "{} slots", s.slots.len());
        assert_eq!(s.popped(), 100);
    }

    #[test]
    fn schedule_past_limit_is_full() {
        let mut s = Scheduler::new(t(0), 2);
        s.schedule(t(1), 'a').unwrap();
        s.schedule(t(1), 'b').unwrap();
        assert_eq!(s.schedule(t(1), 'c'), Err(ScheduleError::Full { limit: 2 }));
        assert_eq!(s.len(), 2);
        s.pop();
        assert_eq!(s.schedule(t(2), 'c'), Ok(()));
    }
}
