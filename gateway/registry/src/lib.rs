//! The registry: names, versions, pins, desired states and the change feed on RocksDB.
