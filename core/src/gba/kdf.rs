//! TS 33.220 Annex B key derivation: Ks_NAF, Ks_ext_NAF, Ks_int_NAF, NAF_Id, B-TID.
