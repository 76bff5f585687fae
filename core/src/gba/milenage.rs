//! Milenage (TS 35.206): f1, f1*, f2, f3, f4, f5, f5*.
