// RocksDBStore: placeholder until its module lands.
