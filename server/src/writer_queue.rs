//! The queue from the gateway task to one connection's writer: the frames the gateway sent
//! it, in order, bounded by the gateway's own send queue plus the close frame.
//!
//! It replaces a `tokio::sync::mpsc` channel for two reasons, both measured (README,
//! "Throughput and idle footprint"):
//!
//! * memory: an mpsc channel allocates its first block of 32 slots when it is created, about
//!   2.5 KiB per connection with the driver's 64-byte `WriterMsg`, even for a connection that is never
//!   sent anything after `connection_established`; this queue holds no buffer while empty;
//! * time: the writer takes everything queued under one lock, and the gateway task wakes a
//!   writer once per drained batch of commands ([`QueueTx::push`] says when the queue was
//!   empty, the caller wakes it with [`QueueTx::wake`] after the batch), not once per frame,
//!   so a client's pings answered in one batch leave in one write.
//!
//! Dropping the [`QueueTx`] closes the queue (the writer drains it, then stops), and
//! dropping the [`QueueRx`] makes every later push fail, as a closed channel would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// What both ends share.
struct Queue<T> {
    state: Mutex<State<T>>,
    /// Wakes the writer: `notify_one` keeps a permit when the writer is not waiting yet, so a
    /// wake between its check and its wait is not lost.
    wake: Notify,
}

struct State<T> {
    frames: VecDeque<T>,
    /// The gateway task let go ([`QueueTx`] dropped).
    closed: bool,
    /// The connection task is gone ([`QueueRx`] dropped).
    gone: bool,
}

impl<T> Queue<T> {
    /// The state, even if a thread panicked holding it: the queue's fields are each valid on
    /// their own, and a panic in the gateway task stops the server anyway.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a push was refused: the writer is gone or the queue is at its bound.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused;

/// The gateway task's end.
pub(crate) struct QueueTx<T> {
    queue: Arc<Queue<T>>,
    capacity: usize,
}

/// The connection task's end.
pub(crate) struct QueueRx<T> {
    queue: Arc<Queue<T>>,
}

/// A queue holding at most `capacity` messages (at least one).
pub(crate) fn queue<T>(capacity: usize) -> (QueueTx<T>, QueueRx<T>) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            frames: VecDeque::new(),
            closed: false,
            gone: false,
        }),
        wake: Notify::new(),
    });
    let tx = QueueTx {
        queue: queue.clone(),
        capacity: capacity.max(1),
    };
    (tx, QueueRx { queue })
}

impl<T> QueueTx<T> {
    /// Queues `msg` without waking the writer; `Ok(true)` when the queue was empty, so the
    /// caller must [`QueueTx::wake`] it (once, after its batch).
    pub(crate) fn push(&self, msg: T) -> Result<bool, Refused> {
        let mut s = self.queue.lock();
        if s.gone || s.frames.len() >= self.capacity {
            return Err(Refused);
        }
        s.frames.push_back(msg);
        Ok(s.frames.len() == 1)
    }

    /// Wakes the writer to take what is queued.
    pub(crate) fn wake(&self) {
        self.queue.wake.notify_one();
    }
}

impl<T> Drop for QueueTx<T> {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_one();
    }
}

impl<T> QueueRx<T> {
    /// Moves everything queued into `into` (which the caller has emptied), waiting while
    /// the queue is empty; `false` once the queue is closed and empty.
    pub(crate) async fn recv_all(&self, into: &mut VecDeque<T>) -> bool {
        loop {
            {
                let mut s = self.queue.lock();
                if !s.frames.is_empty() {
                    // A swap, not a copy: the writer's emptied buffer becomes the queue's, so
                    // a busy connection reuses the same two buffers.
                    std::mem::swap(&mut s.frames, into);
                    return true;
                }
                if s.closed {
                    return false;
                }
                // About to sleep: free both buffers, so an idle connection holds none, not
                // its busiest moment's (the next push allocates one again).
                s.frames = VecDeque::new();
                *into = VecDeque::new();
            }
            self.queue.wake.notified().await;
        }
    }
}

impl<T> Drop for QueueRx<T> {
    fn drop(&mut self) {
        let mut s = self.queue.lock();
        s.gone = true;
        // Nothing queued will be written: free it now rather than when the gateway task
        // lets go of its end.
        s.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The queue is generic; strings stand for the driver's messages.
    fn text(s: &str) -> String {
        s.to_owned()
    }

    fn texts(v: &VecDeque<String>) -> Vec<String> {
        v.iter().cloned().collect()
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_the_bound_refuses_the_one_over() {
        let (tx, rx) = queue(2);
        assert_eq!(tx.push(text("a")), Ok(true));
        assert_eq!(tx.push(text("b")), Ok(false));
        assert_eq!(tx.push(text("c")), Err(Refused));
        let mut got = VecDeque::new();
        assert!(rx.recv_all(&mut got).await);
        assert_eq!(texts(&got), ["a", "b"]);
        // Taken: room again, and the next push reports an empty queue to wake.
        assert_eq!(tx.push(text("d")), Ok(true));
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept_and_dropping_the_sender_ends_after_the_rest() {
        let (tx, rx) = queue(4);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut got = VecDeque::new();
            while rx.recv_all(&mut got).await {
                all.extend(texts(&got));
                got.clear();
            }
            all
        });
        assert_eq!(tx.push(text("x")), Ok(true));
        tx.wake();
        let _ = tx.push(text("close 1001"));
        drop(tx);
        let all = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("the writer ended")
            .expect("the writer did not panic");
        assert_eq!(all, ["x", "close 1001"]);
    }

    #[tokio::test]
    async fn a_writer_that_waits_holds_no_buffer() {
        let (tx, rx) = queue(64);
        for i in 0..40 {
            let _ = tx.push(text(&i.to_string()));
        }
        let mut got = VecDeque::new();
        assert!(rx.recv_all(&mut got).await);
        assert_eq!(got.len(), 40);
        assert!(got.capacity() >= 40);
        got.clear();
        // Nothing queued: it frees both buffers, then waits (and times out here).
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), rx.recv_all(&mut got)).await;
        assert!(waited.is_err());
        assert_eq!(got.capacity(), 0);
        assert_eq!(rx.queue.lock().frames.capacity(), 0);
    }

    #[test]
    fn a_push_after_the_writer_is_gone_is_refused() {
        let (tx, rx) = queue(4);
        assert_eq!(tx.push(text("a")), Ok(true));
        drop(rx);
        assert_eq!(tx.push(text("b")), Err(Refused));
    }
}
