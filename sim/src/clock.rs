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
    /// The run scheduled 2^40 events (about twelve days at a million events per second):
    /// the insertion counter that breaks ties would wrap.
    #[error("event sequence numbers exhausted")]
    SeqExhausted,
}

/// Bits of a key that name the event's slab slot (the rest of the low half is the seq).
const SLOT_BITS: u32 = 24;
/// Most events pending at once: every pending event needs its own slot.
const MAX_SLOTS: usize = 1 << SLOT_BITS;
/// First insertion seq that no longer fits beside the slot.
const SEQ_END: u64 = 1 << (64 - SLOT_BITS);
/// Children per heap node: a node's four children share one or two cache lines, and the
/// tree is half as deep as a binary one, so a pop touches half as many lines.
const ARITY: usize = 4;

/// A pending event's heap key: `at` (ns) in the high half, then the insertion seq, then the
/// slot. Unique (the seq is) and ordered exactly by `(at, seq)`, so one integer compare does
/// what comparing the pair did. The event itself waits in its slot, off the heap.
fn key(at: Instant, seq: u64, slot: u32) -> u128 {
    (u128::from(at.as_nanos()) << 64) | u128::from(seq << SLOT_BITS) | u128::from(slot)
}

fn key_at(key: u128) -> Instant {
    // The high half is exactly the `u64` the key was built from.
    Instant::from_nanos(u64::try_from(key >> 64).unwrap_or(u64::MAX))
}

fn key_slot(key: u128) -> usize {
    (key as usize) & (MAX_SLOTS - 1)
}

/// A 4-ary min-heap of unique keys.
#[derive(Debug, Default)]
struct KeyHeap {
    keys: Vec<u128>,
}

impl KeyHeap {
    fn push(&mut self, key: u128) {
        // Sift up through a hole: parents move down until `key` fits.
        let mut hole = self.keys.len();
        self.keys.push(key);
        while hole > 0 {
            let parent = (hole - 1) / ARITY;
            let p = self.keys[parent];
            if p < key {
                break;
            }
            self.keys[hole] = p;
            hole = parent;
        }
        self.keys[hole] = key;
    }

    fn peek(&self) -> Option<u128> {
        self.keys.first().copied()
    }

    fn pop(&mut self) -> Option<u128> {
        let last = self.keys.pop()?;
        let Some(&top) = self.keys.first() else {
            return Some(last);
        };
        // Sift the last key down from the root through a hole: the least child moves up
        // until `last` is below all of them.
        let n = self.keys.len();
        let mut hole = 0;
        loop {
            let first = hole * ARITY + 1;
            if first >= n {
                break;
            }
            let mut least = first;
            let mut least_key = self.keys[first];
            for child in first + 1..(first + ARITY).min(n) {
                let k = self.keys[child];
                if k < least_key {
                    least = child;
                    least_key = k;
                }
            }
            if last < least_key {
                break;
            }
            self.keys[hole] = least_key;
            hole = least;
        }
        self.keys[hole] = last;
        Some(top)
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A discrete-event scheduler on virtual time, ordered by time then insertion order.
#[derive(Debug)]
pub struct Scheduler<E> {
    queue: KeyHeap,
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
    /// (a limit past 2^24 is treated as 2^24).
    pub fn new(start: Instant, limit: usize) -> Self {
        Self {
            queue: KeyHeap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            now: start,
            next_seq: 0,
            popped: 0,
            limit: limit.min(MAX_SLOTS),
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
        if self.next_seq >= SEQ_END {
            return Err(ScheduleError::SeqExhausted);
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                // `pop` pushes a slot here only after emptying it, so the slot exists; were
                // that ever broken, indexing fails here rather than the event vanishing.
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                // Fewer than `limit <= MAX_SLOTS` events are pending and every slot is in use.
                let slot = u32::try_from(self.slots.len())
                    .map_err(|_| ScheduleError::Full { limit: self.limit })?;
                self.slots.push(Some(event));
                slot
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(key(at, seq, slot));
        Ok(())
    }

    /// Queues `event` to fire `delay` after the current time.
    pub fn schedule_after(&mut self, delay: Duration, event: E) -> Result<(), ScheduleError> {
        self.schedule(self.now.saturating_add(delay), event)
    }

    /// Removes the earliest event (ties: first scheduled) and advances `now` to its time.
    pub fn pop(&mut self) -> Option<(Instant, E)> {
        let key = self.queue.pop()?;
        let (at, slot) = (key_at(key), key_slot(key));
        // Every key names a filled slot: `schedule` fills it and only this pop empties it.
        let event = self
            .slots
            .get_mut(slot)
            .and_then(Option::take)
            .unwrap_or_else(|| unreachable!("scheduler key without an event"));
        // `slot < MAX_SLOTS = 2^24`, so it fits.
        self.free.push(slot as u32);
        // `schedule` refuses the past, so the queue never holds an event before `now`.
        debug_assert!(at >= self.now);
        self.now = at;
        self.popped += 1;
        Some((at, event))
    }

    /// The current virtual time: the time of the last popped event, or the start.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<Instant> {
        self.queue.peek().map(key_at)
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
    fn key_orders_by_time_then_seq_whatever_the_slot() {
        let a = key(t(5), 7, MAX_SLOTS as u32 - 1);
        let b = key(t(5), 8, 0);
        let c = key(t(6), 0, 3);
        assert!(a < b && b < c);
        assert_eq!((key_at(a), key_slot(a)), (t(5), MAX_SLOTS - 1));
        assert_eq!((key_at(c), key_slot(c)), (t(6), 3));
    }

    #[test]
    fn key_heap_pops_every_key_in_ascending_order() {
        let mut heap = KeyHeap::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut pushed = Vec::new();
        for seq in 0..2000u64 {
            // A fixed xorshift stream: many ties on time, all distinct seqs.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key(t(x % 50), seq, (x >> 40) as u32 & 0xff);
            heap.push(k);
            pushed.push(k);
            if seq % 3 == 0 {
                let min = pushed.iter().copied().min().unwrap();
                assert_eq!(heap.pop(), Some(min));
                pushed.retain(|k| *k != min);
            }
        }
        pushed.sort_unstable();
        let rest: Vec<u128> = std::iter::from_fn(|| heap.pop()).collect();
        assert_eq!(rest, pushed);
        assert!(heap.is_empty());
    }

    #[test]
    fn schedule_after_seq_space_is_exhausted_is_refused() {
        let mut s = Scheduler::new(t(0), 10);
        s.next_seq = SEQ_END - 1;
        s.schedule(t(1), 'a').unwrap();
        assert_eq!(s.schedule(t(1), 'b'), Err(ScheduleError::SeqExhausted));
        assert_eq!(s.pop(), Some((t(1), 'a')));
        assert!(s.is_empty());
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
