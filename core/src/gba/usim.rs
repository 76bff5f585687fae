//! A simulated USIM (TS 33.102): K, OPc, SQN management, AUTN verification, AUTS.
