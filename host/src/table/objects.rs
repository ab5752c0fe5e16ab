//! The objects of one table: keys in term order (their [`sort_key`](super::order::sort_key)s
//! in a `BTreeMap`), each with its value, or its values in a bag.
//!
//! Every operation is a loop over what it was given or what it returns, bounded by the
//! caller: nothing here recurses, and nothing here takes a lock (the table holds it).

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use super::{Kind, TableError};
use crate::term::Term;

/// What an object costs the node's table budget beyond its bytes: its share of a B-tree node
/// (the sort key's and the slot's headers; nodes are half full when keys come in order), its
/// entry in the slot's vector, its buffers' allocations. Measured with a counting allocator
/// (glibc's rounding): 360 bytes a set's object with a small key and value, 200 bytes each
/// of a duplicate bag's 4 objects under one key.
const OVERHEAD: usize = 384;

/// What a bag's object costs beyond that: its entry in the slot's hash set of distinct
/// values (measured: 534 bytes in all for one object a key).
const DISTINCT_OVERHEAD: usize = 192;

/// An object ready to go in: its key's sort key computed outside the table's lock.
pub(crate) struct Object {
    pub(crate) sort: Vec<u8>,
    pub(crate) key: Term,
    pub(crate) value: Term,
    /// In a bag, the value's sort key (equal objects are equal values); in a set, empty.
    pub(crate) value_sort: Vec<u8>,
    /// A bag also keeps `value_sort` in its slot's set of distinct values.
    pub(crate) distinct: bool,
}

impl Object {
    /// What it costs the node's budget while it is in a table: every copy of its bytes.
    pub(crate) fn cost(&self) -> usize {
        let distinct = if self.distinct {
            self.value_sort.len() + DISTINCT_OVERHEAD
        } else {
            0
        };
        self.key.len()
            + self.value.len()
            + self.sort.len()
            + self.value_sort.len()
            + distinct
            + OVERHEAD
    }
}

/// One object as a table holds it: with its own key (one key can come in encodings of
/// different lengths) and what it was charged, given back exactly when it goes.
struct Stored {
    key: Term,
    value: Term,
    /// In a bag, the value's sort key; in a set, empty.
    value_sort: Vec<u8>,
    cost: usize,
}

/// One key's objects.
struct Slot {
    /// Objects in insertion order.
    values: Vec<Stored>,
    /// A bag's values' sort keys, to refuse an equal object in O(1).
    distinct: HashSet<Vec<u8>>,
    /// What this key's objects cost: the sum of their `cost`s.
    cost: usize,
}

impl Slot {
    /// The key the slot's objects go out with: the latest one's encoding.
    fn key(&self) -> Option<&Term> {
        self.values.last().map(|s| &s.key)
    }
}

/// A table's objects.
pub(crate) struct Objects {
    kind: Kind,
    /// The table was deleted: a writer that found it before cannot add to it (its bytes
    /// would never be given back to the node's budget).
    deleted: bool,
    map: BTreeMap<Vec<u8>, Slot>,
    count: usize,
    cost: usize,
}

impl Objects {
    pub(crate) fn new(kind: Kind) -> Self {
        Objects {
            kind,
            deleted: false,
            map: BTreeMap::new(),
            count: 0,
            cost: 0,
        }
    }

    /// How many objects.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Mark the table deleted and drop its objects; returns what they cost. Later deletes
    /// free nothing, so nothing is given back to the node's budget twice.
    pub(crate) fn close(&mut self) -> usize {
        self.deleted = true;
        self.map.clear();
        self.count = 0;
        std::mem::take(&mut self.cost)
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// Whether any of `objects`' keys is in the table.
    pub(crate) fn any_key(&self, objects: &[Object]) -> bool {
        objects.iter().any(|o| self.map.contains_key(&o.sort))
    }

    /// Refuse, before anything changes, a bag key whose objects would cost more than
    /// `per_key` (so a lookup's answer stays under the node's maximum message size).
    pub(crate) fn check_bag_keys(
        &self,
        objects: &[Object],
        per_key: usize,
    ) -> Result<(), TableError> {
        if matches!(self.kind, Kind::Set | Kind::OrderedSet) {
            return Ok(());
        }
        let mut added: BTreeMap<&[u8], usize> = BTreeMap::new();
        for o in objects {
            let held = self.map.get(&o.sort).map_or(0, |s| s.cost);
            let sum = added.entry(&o.sort).or_insert(held);
            *sum = sum.saturating_add(o.cost());
            if *sum > per_key {
                return Err(TableError::SystemLimit(format!(
                    "the objects under one key of a bag would take over {per_key} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Insert objects (checked beforehand); returns the cost they freed (objects they
    /// replaced, or equal objects a bag already held).
    pub(crate) fn insert(&mut self, objects: Vec<Object>) -> usize {
        let mut freed = 0usize;
        for o in objects {
            let cost = o.cost();
            let slot = self.map.entry(o.sort).or_insert_with(|| Slot {
                values: Vec::new(),
                distinct: HashSet::new(),
                cost: 0,
            });
            match self.kind {
                Kind::Set | Kind::OrderedSet => {
                    if slot.values.pop().is_some() {
                        self.count = self.count.saturating_sub(1);
                    }
                    freed = freed.saturating_add(slot.cost);
                    self.cost = self.cost.saturating_sub(slot.cost);
                    slot.cost = 0;
                }
                Kind::Bag => {
                    if slot.distinct.contains(&o.value_sort) {
                        freed = freed.saturating_add(cost);
                        continue;
                    }
                    slot.distinct.insert(o.value_sort.clone());
                }
                Kind::DuplicateBag => {}
            }
            if slot.values.capacity() == 0 {
                // Most keys hold one object: not the four a first push makes room for.
                slot.values.reserve_exact(1);
            }
            slot.values.push(Stored {
                key: o.key,
                value: o.value,
                value_sort: o.value_sort,
                cost,
            });
            slot.cost = slot.cost.saturating_add(cost);
            self.cost = self.cost.saturating_add(cost);
            self.count += 1;
        }
        freed
    }

    /// The values under a key, in insertion order.
    pub(crate) fn lookup(&self, sort: &[u8]) -> Vec<Term> {
        self.map.get(sort).map_or_else(Vec::new, |slot| {
            slot.values.iter().map(|s| s.value.clone()).collect()
        })
    }

    pub(crate) fn contains(&self, sort: &[u8]) -> bool {
        self.map.contains_key(sort)
    }

    /// Delete a key's objects; returns the cost freed.
    pub(crate) fn delete(&mut self, sort: &[u8]) -> usize {
        match self.map.remove(sort) {
            Some(slot) => {
                self.count = self.count.saturating_sub(slot.values.len());
                self.cost = self.cost.saturating_sub(slot.cost);
                slot.cost
            }
            None => 0,
        }
    }

    /// Delete a key's objects whose value sorts as `value_sort`; returns the cost freed:
    /// what each of them was charged. `known`: a set's value, and whether it sorts so,
    /// found before the caller took the write lock; used if the value is still those bytes.
    /// `bound`: what ordering a set's value may cost, as `value_sort` was ordered.
    pub(crate) fn delete_object(
        &mut self,
        sort: &[u8],
        value_sort: &[u8],
        known: Option<(&[u8], bool)>,
        bound: usize,
    ) -> usize {
        let Some(slot) = self.map.get_mut(sort) else {
            return 0;
        };
        let mut freed = 0usize;
        let before = slot.values.len();
        slot.values.retain(|s| {
            // A set keeps no value sort keys: its one value is ordered before the lock was
            // taken, or here if it changed since.
            let equal = match known {
                _ if !s.value_sort.is_empty() => s.value_sort == value_sort,
                Some((bytes, equal)) if bytes == s.value.as_slice() => equal,
                _ => super::order::sort_key(&s.value, bound).is_ok_and(|v| v == value_sort),
            };
            if equal {
                freed = freed.saturating_add(s.cost);
            }
            !equal
        });
        slot.distinct.remove(value_sort);
        slot.cost = slot.cost.saturating_sub(freed);
        self.count = self.count.saturating_sub(before - slot.values.len());
        self.cost = self.cost.saturating_sub(freed);
        if slot.values.is_empty() {
            self.map.remove(sort);
        }
        freed
    }

    /// A set's value under a key, for `update-counter`.
    pub(crate) fn value(&self, sort: &[u8]) -> Option<&Term> {
        self.map
            .get(sort)
            .and_then(|slot| slot.values.first())
            .map(|s| &s.value)
    }

    /// Replace a set's value under a key that is there.
    pub(crate) fn replace_value(&mut self, sort: &[u8], value: Term) {
        if let Some(slot) = self.map.get_mut(sort)
            && let Some(stored) = slot.values.first_mut()
        {
            let (old, new) = (stored.value.len(), value.len());
            let charge = |cost: usize| cost.saturating_add(new).saturating_sub(old);
            stored.cost = charge(stored.cost);
            slot.cost = charge(slot.cost);
            self.cost = charge(self.cost);
            stored.value = value;
        }
    }

    /// Up to `limit` objects with keys in `range`, and at most `max_bytes` of keys and
    /// values (but at least one object); the key of the last one if more may follow.
    pub(crate) fn select(
        &self,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        limit: usize,
        max_bytes: usize,
    ) -> super::Selection {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut last: Option<&Term> = None;
        for (_, slot) in self.map.range::<Vec<u8>, _>(range) {
            // A key's objects go out together, so a page never splits a bag's key.
            let size = slot
                .values
                .iter()
                .map(|s| s.key.len() + s.value.len())
                .sum::<usize>();
            if !out.is_empty()
                && (out.len() + slot.values.len() > limit || bytes + size > max_bytes)
            {
                return (out, last.cloned());
            }
            bytes += size;
            out.extend(slot.values.iter().map(|s| (s.key.clone(), s.value.clone())));
            last = slot.key().or(last);
        }
        (out, None)
    }
}
