//! The table registry's bookkeeping, where no guest can time a race for a test.

use std::sync::atomic::Ordering;

use super::*;
use crate::term::encode;

fn tables() -> Tables {
    tables_with(10, 1 << 20)
}

/// Tables that a process may own `per_process` of, holding `bytes` in all.
fn tables_with(per_process: usize, bytes: usize) -> Tables {
    Tables::new(TableLimits {
        tables: 10,
        tables_per_process: per_process,
        bytes,
        term: 1 << 16,
    })
}

fn object(tables: &Tables, table: &Table, key: u32) -> Object {
    tables
        .object(table, encode(&key).unwrap(), encode(&"value").unwrap())
        .unwrap()
}

#[test]
fn a_writer_holding_a_deleted_table_cannot_keep_bytes_from_the_node() {
    let tables = tables();
    tables
        .create(1, "t", Kind::Set, Access::Public, None)
        .unwrap();
    // Another process found the table before its owner deleted it.
    let held = tables.writable(2, "t").unwrap();
    tables
        .insert(&held, vec![object(&tables, &held, 1)], false)
        .unwrap();
    assert!(tables.bytes.load(Ordering::Acquire) > 0);
    tables.delete_table(1, "t").unwrap();
    assert_eq!(tables.bytes.load(Ordering::Acquire), 0);
    let late = vec![object(&tables, &held, 2)];
    assert_eq!(tables.insert(&held, late, false), Err(TableError::NoTable));
    let counter = tables.update_counter(&held, encode(&3).unwrap(), 1, Some(0));
    assert_eq!(counter, Err(TableError::NoTable));
    // Deleting from it gives nothing back twice.
    tables.delete(&held, &tables.key(&encode(&1).unwrap()).unwrap());
    assert_eq!(tables.bytes.load(Ordering::Acquire), 0);
}

#[test]
fn an_owners_exit_gives_its_tables_bytes_back_or_passes_them_to_the_heir() {
    let tables = tables();
    tables
        .create(1, "gone", Kind::Set, Access::Protected, None)
        .unwrap();
    let heir = Some((3, encode(&"data").unwrap()));
    tables
        .create(1, "kept", Kind::Bag, Access::Protected, heir)
        .unwrap();
    for name in ["gone", "kept"] {
        let t = tables.writable(1, name).unwrap();
        tables
            .insert(&t, vec![object(&tables, &t, 1)], false)
            .unwrap();
    }
    let both = tables.bytes.load(Ordering::Acquire);
    let transfers = tables.owner_exited(1, |p| p == 3);
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0].0, 3);
    assert_eq!(tables.get("gone").err(), Some(TableError::NoTable));
    assert_eq!(tables.get("kept").unwrap().owner(), 3);
    let kept = tables.bytes.load(Ordering::Acquire);
    assert!(0 < kept && kept < both);
    // The heir has no heir: its exit deletes the table.
    assert!(tables.owner_exited(3, |_| true).is_empty());
    assert_eq!(tables.bytes.load(Ordering::Acquire), 0);
}

fn bytes(tables: &Tables) -> usize {
    tables.bytes.load(Ordering::Acquire)
}

/// `"a"` as an indefinite text of `chunks` chunks, all empty but the first.
fn padded_a(chunks: usize) -> Term {
    let mut t = vec![0x7f, 0x61, b'a'];
    t.resize(3 + chunks, 0x60);
    t.push(0xff);
    t
}

#[test]
fn a_key_sent_in_encodings_of_different_lengths_gives_back_exactly_what_each_object_cost() {
    let tables = tables();
    tables
        .create(1, "t", Kind::DuplicateBag, Access::Public, None)
        .unwrap();
    let t = tables.writable(1, "t").unwrap();
    for (short, long) in [
        (encode(&"a").unwrap(), padded_a(30_000)),
        // 1.5 as a half float, then as a double.
        (vec![0xf9, 0x3e, 0x00], encode(&1.5f64).unwrap()),
    ] {
        let one = |key: &Term, value: &str| {
            tables
                .object(&t, key.clone(), encode(&value).unwrap())
                .unwrap()
        };
        tables.insert(&t, vec![one(&short, "v1")], false).unwrap();
        let first = bytes(&tables);
        tables.insert(&t, vec![one(&long, "v2")], false).unwrap();
        let both = bytes(&tables);
        let sort = tables.key(&short).unwrap();
        let v1 = tables.value_key(&encode(&"v1").unwrap()).unwrap();
        tables.delete_object(&t, &sort, &v1);
        assert_eq!(bytes(&tables), both - first, "what the second object cost");
        let v2 = tables.value_key(&encode(&"v2").unwrap()).unwrap();
        tables.delete_object(&t, &sort, &v2);
        assert_eq!(bytes(&tables), 0);
        assert_eq!(t.size(), Ok(0));
    }
}

#[test]
fn a_bag_counts_both_copies_of_a_values_order() {
    let tables = tables();
    let cost = |kind, name| {
        tables.create(1, name, kind, Access::Public, None).unwrap();
        let t = tables.writable(1, name).unwrap();
        let before = bytes(&tables);
        tables
            .insert(&t, vec![object(&tables, &t, 1)], false)
            .unwrap();
        bytes(&tables) - before
    };
    let (bag, duplicates) = (cost(Kind::Bag, "bag"), cost(Kind::DuplicateBag, "dup"));
    let value_sort = tables.value_key(&encode(&"value").unwrap()).unwrap();
    // The second copy of the value's order, and its hash set entry.
    assert!(bag > duplicates + value_sort.len(), "{bag} {duplicates}");
    assert!(
        duplicates >= 360,
        "an object's bookkeeping costs at least 360 bytes"
    );
}

#[test]
fn a_table_lock_poisoned_by_a_panic_does_not_panic_every_later_caller() {
    let tables = tables();
    tables
        .create(1, "t", Kind::Set, Access::Public, None)
        .unwrap();
    let t = tables.writable(1, "t").unwrap();
    tables
        .insert(&t, vec![object(&tables, &t, 1)], false)
        .unwrap();
    let poisoner = Arc::clone(&t);
    std::thread::spawn(move || {
        let _held = poisoner.objects.write().unwrap();
        panic!("a bug while the table is held");
    })
    .join()
    .unwrap_err();
    assert!(t.objects.is_poisoned());
    let sort = tables.key(&encode(&1).unwrap()).unwrap();
    assert_eq!(tables.read(2, "t", |t| t.member(&sort)), Ok(true));
    tables
        .insert(&t, vec![object(&tables, &t, 2)], false)
        .unwrap();
    assert_eq!(t.size(), Ok(2));
    tables.delete_table(1, "t").unwrap();
    assert_eq!(bytes(&tables), 0);
}

#[test]
fn an_insert_of_too_many_objects_is_refused_whole() {
    let tables = tables();
    tables
        .create(1, "t", Kind::Set, Access::Public, None)
        .unwrap();
    let t = tables.writable(1, "t").unwrap();
    let many: Vec<_> = (0..=MAX_INSERT as u32)
        .map(|k| object(&tables, &t, k))
        .collect();
    let refused = tables.insert(&t, many, false).unwrap_err();
    assert!(matches!(refused, TableError::SystemLimit(_)), "{refused:?}");
    assert_eq!((t.size(), bytes(&tables)), (Ok(0), 0));
    let most: Vec<_> = (0..MAX_INSERT as u32)
        .map(|k| object(&tables, &t, k))
        .collect();
    // The node's budget in these tests holds fewer: what matters is the count is allowed.
    let answer = tables.insert(&t, most, false);
    assert!(
        !matches!(&answer, Err(TableError::SystemLimit(why)) if why.contains("objects")),
        "{answer:?}"
    );
}

#[test]
fn a_key_whose_order_would_be_far_longer_than_the_term_is_refused() {
    let tables = tables();
    // 60,000 small integers: 60 KB of term, over 1 MB of order.
    let mut many = vec![0x9f];
    many.resize(60_001, 0x00);
    many.push(0xff);
    let refused = tables.key(&many).map(|key| key.len());
    assert!(
        matches!(&refused, Err(TableError::Badarg(why)) if why.contains("order key")),
        "{refused:?}"
    );
    assert!(matches!(
        tables.value_key(&many),
        Err(TableError::Badarg(_))
    ));
    // A long text is fine: its order is about its length.
    assert!(tables.key(&encode(&"x".repeat(60_000)).unwrap()).is_ok());
}

/// Run `f` on a thread while `busy`'s objects are write-locked by a long write, and tell
/// whether a reader of another table still gets its answer.
fn readers_of_other_tables_go_on(tables: &Tables, busy: &str, f: impl Fn(&Tables) + Sync) {
    let table = tables.get(busy).unwrap();
    let writing = table.objects.write().unwrap();
    let sort = tables.key(&encode(&1).unwrap()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| f(tables));
        std::thread::sleep(Duration::from_millis(100));
        let (tx, rx) = std::sync::mpsc::channel();
        let sort = &sort;
        s.spawn(move || tx.send(tables.read(9, "quiet", |q| q.lookup(sort))));
        let answer = rx.recv_timeout(Duration::from_secs(2));
        drop(writing);
        assert_eq!(
            answer,
            Ok(Ok(Vec::new())),
            "a reader of another table was held back"
        );
    });
}

use std::time::Duration;

#[test]
fn a_reader_waiting_behind_a_write_does_not_hold_back_the_readers_of_other_tables() {
    let tables = tables();
    for (owner, name) in [(1, "busy"), (2, "quiet"), (3, "gone")] {
        tables
            .create(owner, name, Kind::Set, Access::Public, None)
            .unwrap();
    }
    readers_of_other_tables_go_on(&tables, "busy", |tables| {
        let sort = tables.key(&encode(&1).unwrap()).unwrap();
        std::thread::scope(|s| {
            // A reader of the busy table, then an exit that writes the index.
            s.spawn(|| tables.read(9, "busy", |b| b.lookup(&sort)));
            std::thread::sleep(Duration::from_millis(50));
            s.spawn(|| tables.owner_exited(3, |_| false));
        });
    });
}

#[test]
fn an_exit_deleting_a_busy_table_does_not_hold_back_the_readers_of_other_tables() {
    let tables = tables();
    for (owner, name) in [(1, "busy"), (2, "quiet")] {
        tables
            .create(owner, name, Kind::Set, Access::Public, None)
            .unwrap();
    }
    readers_of_other_tables_go_on(&tables, "busy", |tables| {
        tables.owner_exited(1, |_| false);
    });
    assert_eq!(tables.get("busy").err(), Some(TableError::NoTable));
}

#[test]
fn heir_data_counts_against_the_node_table_budget_until_the_table_lets_it_go() {
    let tables = tables_with(10, 10_000);
    let data = |n: usize| Some((99, encode(&"d".repeat(n)).unwrap()));
    tables
        .create(1, "a", Kind::Set, Access::Public, data(6000))
        .unwrap();
    assert!(bytes(&tables) > 6000);
    assert!(matches!(
        tables.create(1, "b", Kind::Set, Access::Public, data(6000)),
        Err(TableError::SystemLimit(_))
    ));
    // Replaced by a smaller one, then cleared: given back each time.
    tables.set_heir(1, "a", data(10)).unwrap();
    assert!(bytes(&tables) < 100, "{}", bytes(&tables));
    tables.set_heir(1, "a", data(6000)).unwrap();
    // Replaced: only the difference is taken.
    tables.set_heir(1, "a", data(9000)).unwrap();
    assert!(tables.set_heir(1, "a", data(11_000)).is_err());
    tables.delete_table(1, "a").unwrap();
    assert_eq!(bytes(&tables), 0);
    // Passed on with the table when its owner exits, or dropped with it.
    tables
        .create(1, "c", Kind::Set, Access::Public, data(6000))
        .unwrap();
    let transfers = tables.owner_exited(1, |_| true);
    assert_eq!(transfers.len(), 1);
    assert_eq!(bytes(&tables), 0);
}

#[test]
fn a_table_given_away_counts_against_the_receivers_tables() {
    let tables = tables_with(2, 1 << 20);
    for name in ["r1", "r2"] {
        tables
            .create(2, name, Kind::Set, Access::Public, None)
            .unwrap();
    }
    tables
        .create(1, "g", Kind::Set, Access::Public, None)
        .unwrap();
    let given = tables.give_away(1, "g", 2, encode(&0).unwrap(), |_| true);
    assert!(
        matches!(given, Err(TableError::SystemLimit(_))),
        "{given:?}"
    );
    assert_eq!(tables.get("g").unwrap().owner(), 1);
}

#[test]
fn an_insert_whose_objects_would_pass_the_budget_is_refused_as_they_are_made() {
    let tables = tables_with(10, 100_000);
    tables
        .create(1, "t", Kind::Set, Access::Public, None)
        .unwrap();
    let t = tables.writable(1, "t").unwrap();
    // A key of a thousand small integers orders as 18 KB: ten of them pass the budget.
    let pair = |i: u32| (encode(&(i, vec![1u8; 1000])).unwrap(), encode(&0).unwrap());
    let refused = tables.objects(&t, (0..10).map(pair).collect());
    assert!(
        matches!(refused, Err(TableError::SystemLimit(_))),
        "{:?}",
        refused.err()
    );
    let made = tables.objects(&t, (0..3).map(pair).collect()).unwrap();
    assert!(tables.insert(&t, made, false).unwrap());
    assert!(bytes(&tables) > 54_000);
}

#[test]
fn a_sets_value_ordered_before_the_write_lock_is_used_only_if_it_is_still_there() {
    let tables = tables();
    tables
        .create(1, "s", Kind::Set, Access::Public, None)
        .unwrap();
    let t = tables.writable(1, "s").unwrap();
    let v = |text: &str| encode(&text).unwrap();
    let put = |value: Term| {
        let object = tables.object(&t, encode(&1).unwrap(), value).unwrap();
        tables.insert(&t, vec![object], false).unwrap();
    };
    let sort = tables.key(&encode(&1).unwrap()).unwrap();
    // Another encoding of the same text is the same value.
    put(v("a"));
    let indefinite = vec![0x7f, 0x61, b'a', 0xff];
    tables.delete_object(&t, &sort, &tables.value_key(&indefinite).unwrap());
    assert_eq!(tables.get("s").unwrap().size(), Ok(0));
    // Ordered as "b" before a writer put "a" back: the verdict is not for "a".
    put(v("a"));
    let b_sort = tables.value_key(&v("b")).unwrap();
    let stale = Some((v("b"), true));
    let known = stale.as_ref().map(|(bytes, eq)| (bytes.as_slice(), *eq));
    write(&t.objects).delete_object(&sort, &b_sort, known, usize::MAX);
    assert_eq!(
        tables.get("s").unwrap().size(),
        Ok(1),
        "a was deleted for b"
    );
}
