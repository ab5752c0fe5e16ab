//! A first-in first-out queue kept in chunks of at most [`CHUNK`] items.
//!
//! A `VecDeque` that outgrows its buffer copies everything it holds into one twice the size,
//! under the mailbox's lock: at a million queued messages that is 24 MiB copied while every
//! sender waits, into pages the kernel must first fault in (the old buffer's are given back).
//! A queue in chunks never moves what it holds, and gives each chunk back as soon as it is
//! drained, so a long queue costs its memory once, on the way in, and returns it on the way
//! out. Up to [`CHUNK`] items it is a single `VecDeque`, growing as one does, so that a
//! short queue costs what it did.

use std::collections::VecDeque;

/// Items per chunk: 256 messages are 12 KiB, a page-sized multiple the allocator serves from
/// its own pages, and a process keeps at most this much room once its queue has drained.
pub(super) const CHUNK: usize = 256;

/// A queue in chunks. Invariant: `head` is empty only if `rest` is `None`, and no chunk in
/// `rest` is empty.
pub(crate) struct Queue<T> {
    /// The oldest items: the only chunk of a short queue.
    head: VecDeque<T>,
    /// The chunks behind `head`; boxed so that a short queue pays one word for them.
    rest: Option<Box<Rest<T>>>,
}

/// The chunks behind a long queue's head.
struct Rest<T> {
    /// Oldest first, each made with room for [`CHUNK`] items.
    chunks: VecDeque<VecDeque<T>>,
    /// The items they hold, so that a queue's length (a guest may ask it in a loop) is not a
    /// walk over its chunks under the mailbox's lock.
    len: usize,
}

impl<T> Rest<T> {
    fn of(chunk: VecDeque<T>) -> Box<Rest<T>> {
        Box::new(Rest {
            len: chunk.len(),
            chunks: VecDeque::from([chunk]),
        })
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            head: VecDeque::new(),
            rest: None,
        }
    }
}

impl<T> Queue<T> {
    /// Whether no item is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.rest.as_ref().map_or(0, |r| r.len)
    }

    /// The oldest item.
    pub(crate) fn front(&self) -> Option<&T> {
        self.head.front()
    }

    /// Queue `item` last.
    pub(crate) fn push_back(&mut self, item: T) {
        match &mut self.rest {
            None if self.head.len() < CHUNK => self.head.push_back(item),
            None => self.rest = Some(Rest::of(chunk_of(item))),
            Some(rest) => {
                rest.len += 1;
                match rest.chunks.back_mut() {
                    Some(last) if last.len() < CHUNK => last.push_back(item),
                    _ => rest.chunks.push_back(chunk_of(item)),
                }
            }
        }
    }

    /// Queue `item` first.
    pub(crate) fn push_front(&mut self, item: T) {
        if self.head.len() < CHUNK {
            self.head.push_front(item);
            return;
        }
        let full = std::mem::replace(&mut self.head, chunk_of(item));
        match &mut self.rest {
            None => self.rest = Some(Rest::of(full)),
            Some(rest) => {
                rest.len += full.len();
                rest.chunks.push_front(full);
            }
        }
    }

    /// Take the oldest item; a chunk it empties is given back.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.head.pop_front()?;
        if self.head.is_empty() {
            self.promote();
        }
        Some(item)
    }

    /// The items, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks().flatten()
    }

    /// Take the item at `index` (0 is the oldest), if there is one.
    pub(crate) fn remove(&mut self, mut index: usize) -> Option<T> {
        if index < self.head.len() {
            let item = self.head.remove(index);
            if self.head.is_empty() {
                self.promote();
            }
            return item;
        }
        index -= self.head.len();
        let rest = self.rest.as_mut()?;
        for (i, chunk) in rest.chunks.iter_mut().enumerate() {
            if index < chunk.len() {
                let item = chunk.remove(index);
                rest.len -= 1;
                if chunk.is_empty() {
                    rest.chunks.remove(i);
                    if rest.chunks.is_empty() {
                        self.rest = None;
                    }
                }
                return item;
            }
            index -= chunk.len();
        }
        None
    }

    /// Room for items the queue holds now.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.chunks().map(VecDeque::capacity).sum()
    }

    /// The chunks, oldest first.
    fn chunks(&self) -> impl Iterator<Item = &VecDeque<T>> {
        std::iter::once(&self.head).chain(self.rest.iter().flat_map(|r| r.chunks.iter()))
    }

    /// `head` was emptied: the next chunk takes its place, and the emptied one is freed.
    fn promote(&mut self) {
        let Some(rest) = &mut self.rest else { return };
        if let Some(next) = rest.chunks.pop_front() {
            rest.len -= next.len();
            self.head = next;
        }
        if rest.chunks.is_empty() {
            self.rest = None;
        }
    }
}

/// A new chunk holding `item`, with room for [`CHUNK`].
fn chunk_of<T>(item: T) -> VecDeque<T> {
    let mut chunk = VecDeque::with_capacity(CHUNK);
    chunk.push_back(item);
    chunk
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::{CHUNK, Queue};

    #[derive(Debug, Clone)]
    enum Op {
        PushBack,
        PushFront,
        Pop,
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::PushBack),
            1 => Just(Op::PushFront),
            4 => Just(Op::Pop),
            1 => any::<usize>().prop_map(Op::Remove),
        ]
    }

    /// The queue's chunks hold together: no empty chunk but a lone head, none over `CHUNK`.
    fn check_shape<T>(q: &Queue<T>) {
        if q.head.is_empty() {
            assert!(q.rest.is_none(), "an empty head with chunks behind it");
        }
        assert!(q.head.len() <= CHUNK);
        assert!(
            q.rest.as_ref().is_none_or(|r| !r.chunks.is_empty()),
            "an empty list of chunks kept"
        );
        for chunk in q.rest.iter().flat_map(|r| r.chunks.iter()) {
            assert!(
                !chunk.is_empty() && chunk.len() <= CHUNK,
                "a chunk of {}",
                chunk.len()
            );
        }
    }

    proptest! {
        #[test]
        fn a_queue_in_chunks_keeps_the_order_a_vecdeque_keeps(
            ops in proptest::collection::vec(op(), 0..3000),
        ) {
            let mut q = Queue::default();
            let mut model = VecDeque::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::PushBack => {
                        q.push_back(n);
                        model.push_back(n);
                    }
                    Op::PushFront => {
                        q.push_front(n);
                        model.push_front(n);
                    }
                    Op::Pop => prop_assert_eq!(q.pop_front(), model.pop_front()),
                    Op::Remove(i) => {
                        let i = i % (model.len() + 1);
                        prop_assert_eq!(q.remove(i), model.remove(i));
                    }
                }
                check_shape(&q);
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.len(), q.iter().count());
                prop_assert_eq!(q.front(), model.front());
            }
            prop_assert!(q.iter().eq(model.iter()));
        }
    }

    #[test]
    fn a_long_queue_gives_its_chunks_back_as_it_drains() {
        let mut q = Queue::default();
        for n in 0..100 * CHUNK {
            q.push_back(n);
        }
        assert!(q.capacity() < 101 * CHUNK, "room for {}", q.capacity());
        for n in 0..50 * CHUNK {
            assert_eq!(q.pop_front(), Some(n));
        }
        assert!(
            q.capacity() <= 51 * CHUNK,
            "half drained, room for {} is kept",
            q.capacity()
        );
        while q.pop_front().is_some() {}
        assert!(
            q.capacity() <= CHUNK,
            "drained, room for {} is kept",
            q.capacity()
        );
    }

    #[test]
    fn pushing_to_the_front_of_a_full_head_starts_a_chunk() {
        let mut q = Queue::default();
        for n in 1..=CHUNK {
            q.push_back(n);
        }
        q.push_front(0);
        check_shape(&q);
        assert!((0..=CHUNK).eq(std::iter::from_fn(|| q.pop_front())));
    }

    #[test]
    fn a_chunk_emptied_by_removals_is_given_back() {
        let mut q = Queue::default();
        let mut model = VecDeque::new();
        for n in 0..3 * CHUNK {
            q.push_back(n);
            model.push_back(n);
        }
        // Empty the middle chunk, then the last, one item at a time.
        for _ in 0..CHUNK {
            assert_eq!(q.remove(CHUNK), model.remove(CHUNK));
            check_shape(&q);
        }
        for _ in 0..CHUNK {
            assert_eq!(q.remove(CHUNK), model.remove(CHUNK));
            check_shape(&q);
        }
        assert!(q.rest.is_none(), "chunks emptied by removals are kept");
        assert!(q.iter().eq(model.iter()));
    }
}
