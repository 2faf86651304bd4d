//! A DNS server on loopback UDP with fixed records (to be written).
