//! HTTP Digest AKA (RFC 3310, AKAv1-MD5) message logic for Ub, sans-IO.
