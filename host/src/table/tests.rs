//! The table registry's bookkeeping, where no guest can time a race for a test.

use std::sync::atomic::Ordering;

use super::*;
use crate::term::encode;

fn tables() -> Tables {
    Tables::new(TableLimits {
        tables: 10,
        tables_per_process: 10,
        bytes: 1 << 20,
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
