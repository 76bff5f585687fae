//! Milenage against TS 35.208 test sets 1-6 (every function; all 20 sets are run from data by
//! `testvectors`) and the simulated USIM / home network: normal run, MAC failure, replay → sync
//! failure → resync → next vector accepted, the IND array, Δ, and the AMF policy.
#![cfg(feature = "gba")]

use m2msec::gba::milenage::{opc, Milenage};
use m2msec::gba::usim::{
    generate_vector, resync, sqn_from_u64, sqn_to_u64, AmfPolicy, ResyncError, SqnProfile, Usim,
    UsimFailure,
};

fn h<const N: usize>(s: &str) -> [u8; N] {
    let v = hex::decode(s).unwrap();
    v.try_into().unwrap()
}

/// K, RAND, SQN, AMF, OP, OPc, f1, f1*, f2, f3, f4, f5, f5*: TS 35.208 4.3.1-4.3.6 (values as
/// reproduced in hostapd tests/test-milenage.c and free5GC's milenage tests; see
/// testvectors/data/gba/milenage.json for the provenance).
const SETS: [[&str; 13]; 6] = [
    [
        "465b5ce8b199b49faa5f0a2ee238a6bc",
        "23553cbe9637a89d218ae64dae47bf35",
        "ff9bb4d0b607",
        "b9b9",
        "cdc202d5123e20f62b6d676ac72cb318",
        "cd63cb71954a9f4e48a5994e37a02baf",
        "4a9ffac354dfafb3",
        "01cfaf9ec4e871e9",
        "a54211d5e3ba50bf",
        "b40ba9a3c58b2a05bbf0d987b21bf8cb",
        "f769bcd751044604127672711c6d3441",
        "aa689c648370",
        "451e8beca43b",
    ],
    [
        "0396eb317b6d1c36f19c1c84cd6ffd16",
        "c00d603103dcee52c4478119494202e8",
        "fd8eef40df7d",
        "af17",
        "ff53bade17df5d4e793073ce9d7579fa",
        "53c15671c60a4b731c55b4a441c0bde2",
        "5df5b31807e258b0",
        "a8c016e51ef4a343",
        "d3a628ed988620f0",
        "58c433ff7a7082acd424220f2b67c556",
        "21a8c1f929702adb3e738488b9f5c5da",
        "c47783995f72",
        "30f1197061c1",
    ],
    [
        "fec86ba6eb707ed08905757b1bb44b8f",
        "9f7c8d021accf4db213ccff0c7f71a6a",
        "9d0277595ffc",
        "725c",
        "dbc59adcb6f9a0ef735477b7fadf8374",
        "1006020f0a478bf6b699f15c062e42b3",
        "9cabc3e99baf7281",
        "95814ba2b3044324",
        "8011c48c0c214ed2",
        "5dbdbb2954e8f3cde665b046179a5098",
        "59a92d3b476a0443487055cf88b2307b",
        "33484dc2136b",
        "deacdd848cc6",
    ],
    [
        "9e5944aea94b81165c82fbf9f32db751",
        "ce83dbc54ac0274a157c17f80d017bd6",
        "0b604a81eca8",
        "9e09",
        "223014c5806694c007ca1eeef57f004f",
        "a64a507ae1a2a98bb88eb4210135dc87",
        "74a58220cba84c49",
        "ac2cc74a96871837",
        "f365cd683cd92e96",
        "e203edb3971574f5a94b0d61b816345d",
        "0c4524adeac041c4dd830d20854fc46b",
        "f0b9c08ad02e",
        "6085a86c6f63",
    ],
    [
        "4ab1deb05ca6ceb051fc98e77d026a84",
        "74b0cd6031a1c8339b2b6ce2b8c4a186",
        "e880a1b580b6",
        "9f07",
        "2d16c5cd1fdf6b22383584e3bef2a8d8",
        "dcf07cbd51855290b92a07a9891e523e",
        "49e785dd12626ef2",
        "9e85790336bb3fa2",
        "5860fc1bce351e7e",
        "7657766b373d1c2138f307e3de9242f9",
        "1c42e960d89b8fa99f2744e0708ccb53",
        "31e11a609118",
        "fe2555e54aa9",
    ],
    [
        "6c38a116ac280c454f59332ee35c8c4f",
        "ee6466bc96202c5a557abbeff8babf63",
        "414b98222181",
        "4464",
        "1ba00a1a7c6700ac8c3ff3e96ad08725",
        "3803ef5363b947c6aaa225e58fae3934",
        "078adfb488241a57",
        "80246b8d0186bcf1",
        "16c8233f05a0ac28",
        "3f8c7587fe8e4b233af676aede30ba3b",
        "a7466cc1e6b2a1337d49d3b66e95d7b4",
        "45b0f69ab06c",
        "1f53cd2b1113",
    ],
];

#[test]
fn ts_35_208_sets_1_to_6_every_function() {
    for (n, s) in SETS.iter().enumerate() {
        let set = n + 1;
        let (k, rand, sqn, amf) = (h::<16>(s[0]), h::<16>(s[1]), h::<6>(s[2]), h::<2>(s[3]));
        let (op, opc_want) = (h::<16>(s[4]), h::<16>(s[5]));
        assert_eq!(opc(&k, &op), opc_want, "set {set} OPc");
        for m in [
            Milenage::new_with_op(&k, &op),
            Milenage::new_with_opc(&k, &opc_want),
        ] {
            assert_eq!(m.f1(&rand, &sqn, &amf), h::<8>(s[6]), "set {set} f1");
            assert_eq!(m.f1_star(&rand, &sqn, &amf), h::<8>(s[7]), "set {set} f1*");
            assert_eq!(m.f2(&rand), h::<8>(s[8]), "set {set} f2");
            assert_eq!(m.f3(&rand), h::<16>(s[9]), "set {set} f3");
            assert_eq!(m.f4(&rand), h::<16>(s[10]), "set {set} f4");
            assert_eq!(m.f5(&rand), h::<6>(s[11]), "set {set} f5");
            assert_eq!(m.f5_star(&rand), h::<6>(s[12]), "set {set} f5*");
        }
        // The home network's vector carries the same values.
        let av = generate_vector(&k, &opc_want, &sqn, &amf, &rand);
        assert_eq!(av.xres, h::<8>(s[8]));
        assert_eq!(av.ck, h::<16>(s[9]));
        assert_eq!(av.ik, h::<16>(s[10]));
        assert_eq!(&av.autn[8..], &h::<8>(s[6]));
    }
}

#[test]
fn set_1_autn_matches_spec_notes() {
    let s = &SETS[0];
    let av = generate_vector(&h(s[0]), &h(s[5]), &h(s[2]), &h(s[3]), &h(s[1]));
    assert_eq!(hex::encode(av.autn), "55f328b43577b9b94a9ffac354dfafb3");
    assert_eq!(
        hex::encode(av.ks().0),
        "b40ba9a3c58b2a05bbf0d987b21bf8cbf769bcd751044604127672711c6d3441"
    );
}

fn subscriber() -> ([u8; 16], [u8; 16]) {
    (h(SETS[0][0]), h(SETS[0][5]))
}

fn rand_n(n: u8) -> [u8; 16] {
    let mut r = h::<16>(SETS[0][1]);
    r[15] ^= n;
    r
}

#[test]
fn normal_run_gives_xres_ck_ik() {
    let (k, opc) = subscriber();
    let mut usim = Usim::new(&k, &opc);
    let p = usim.profile();
    let sqn = p.sqn(1, 0).unwrap();
    let av = generate_vector(&k, &opc, &sqn, &[0, 0], &rand_n(1));
    let r = usim.authenticate(&av.rand, &av.autn).unwrap();
    assert_eq!(r.res, av.xres);
    assert_eq!(r.ck, av.ck);
    assert_eq!(r.ik, av.ik);
    assert_eq!(r.ks(), av.ks());
    assert_eq!(usim.sqn_ms(), sqn);
    assert_eq!(format!("{r:?}"), "UsimResponse(<redacted>)");
    let dbg = format!("{usim:?}");
    assert!(
        !dbg.contains(&hex::encode(k)) && !dbg.contains("465b"),
        "{dbg}"
    );
}

#[test]
fn tampered_autn_is_a_mac_failure_and_changes_nothing() {
    let (k, opc) = subscriber();
    let mut usim = Usim::new(&k, &opc);
    let sqn = usim.profile().sqn(5, 3).unwrap();
    let av = generate_vector(&k, &opc, &sqn, &[0, 0], &rand_n(2));
    for byte in [0usize, 5, 6, 7, 8, 15] {
        let mut autn = av.autn;
        autn[byte] ^= 0x01;
        assert_eq!(
            usim.authenticate(&av.rand, &autn),
            Err(UsimFailure::MacFailure),
            "byte {byte}"
        );
    }
    // A different RAND with the same AUTN fails too.
    assert_eq!(
        usim.authenticate(&rand_n(3), &av.autn),
        Err(UsimFailure::MacFailure)
    );
    // A wrong K (another subscriber) fails.
    let mut other = Usim::new(&h(SETS[1][0]), &h(SETS[1][5]));
    assert_eq!(
        other.authenticate(&av.rand, &av.autn),
        Err(UsimFailure::MacFailure)
    );
    assert_eq!(usim.sqn_ms(), [0; 6]);
    assert!(usim.authenticate(&av.rand, &av.autn).is_ok());
}

#[test]
fn replay_sync_failure_resync_and_recovery() {
    let (k, opc) = subscriber();
    let mut usim = Usim::new(&k, &opc);
    let p = usim.profile();
    // The network has used SEQ 1..=40 with IND cycling; the USIM accepts them all.
    let mut last = None;
    for seq in 1..=40u64 {
        let sqn = p.sqn(seq, seq % 32).unwrap();
        let av = generate_vector(&k, &opc, &sqn, &[0x80, 0x00], &rand_n(seq as u8));
        usim.authenticate(&av.rand, &av.autn).unwrap();
        last = Some(av);
    }
    let sqn_ms = usim.sqn_ms();
    assert_eq!(p.split(&sqn_ms), (40, 40 % 32));

    // Replaying the last vector is refused with a synch failure.
    let last = last.unwrap();
    let Err(UsimFailure::SyncFailure { auts }) = usim.authenticate(&last.rand, &last.autn) else {
        panic!("replay accepted")
    };
    // The home network (having lost its SQN, say at SEQ 3) recovers SQN_MS from AUTS.
    assert_eq!(resync(&k, &opc, &last.rand, &auts), Ok(sqn_ms));
    // A tampered AUTS or the wrong RAND does not verify.
    let mut bad = auts;
    bad[13] ^= 0x40;
    assert_eq!(
        resync(&k, &opc, &last.rand, &bad),
        Err(ResyncError::MacFailure)
    );
    assert_eq!(
        resync(&k, &opc, &rand_n(99), &auts),
        Err(ResyncError::MacFailure)
    );

    // An old SQN (the network's stale counter) is refused with the same SQN_MS.
    let stale = p.sqn(3, 3).unwrap();
    let av = generate_vector(&k, &opc, &stale, &[0x80, 0x00], &rand_n(200));
    let Err(UsimFailure::SyncFailure { auts }) = usim.authenticate(&av.rand, &av.autn) else {
        panic!("stale SQN accepted")
    };
    let recovered = resync(&k, &opc, &av.rand, &auts).unwrap();
    assert_eq!(recovered, sqn_ms);

    // The next vector from SQN_MS + 1 is accepted.
    let next = p.next_after(&recovered, 0).unwrap();
    assert_eq!(sqn_to_u64(&next), (41 << 5));
    let av = generate_vector(&k, &opc, &next, &[0x80, 0x00], &rand_n(201));
    let r = usim.authenticate(&av.rand, &av.autn).unwrap();
    assert_eq!(r.res, av.xres);
    assert_eq!(p.split(&usim.sqn_ms()), (41, 0));
}

#[test]
fn ind_array_accepts_out_of_order_vectors_per_entry() {
    let (k, opc) = subscriber();
    let mut usim = Usim::new(&k, &opc);
    let p = usim.profile();
    // Two serving nodes use IND 1 and IND 2; their vectors arrive out of order.
    let a = generate_vector(&k, &opc, &p.sqn(10, 1).unwrap(), &[0, 0], &rand_n(1));
    let b = generate_vector(&k, &opc, &p.sqn(7, 2).unwrap(), &[0, 0], &rand_n(2));
    usim.authenticate(&a.rand, &a.autn).unwrap();
    usim.authenticate(&b.rand, &b.autn).unwrap(); // SEQ 7 < 10 but a fresh entry
    let c = generate_vector(&k, &opc, &p.sqn(6, 2).unwrap(), &[0, 0], &rand_n(3));
    assert!(matches!(
        usim.authenticate(&c.rand, &c.autn),
        Err(UsimFailure::SyncFailure { .. })
    ));
    assert_eq!(p.split(&usim.sqn_ms()), (10, 1));
}

#[test]
fn delta_limits_jumps_ahead() {
    let (k, opc) = subscriber();
    let profile = SqnProfile {
        ind_bits: 5,
        delta: Some(100),
    };
    let mut usim = Usim::with_profile(&k, &opc, profile, AmfPolicy::Any);
    let ok = generate_vector(&k, &opc, &profile.sqn(100, 0).unwrap(), &[0, 0], &rand_n(1));
    usim.authenticate(&ok.rand, &ok.autn).unwrap();
    let far = generate_vector(&k, &opc, &profile.sqn(201, 1).unwrap(), &[0, 0], &rand_n(2));
    let Err(UsimFailure::SyncFailure { auts }) = usim.authenticate(&far.rand, &far.autn) else {
        panic!("jump beyond delta accepted")
    };
    assert_eq!(
        resync(&k, &opc, &far.rand, &auts).map(|s| profile.split(&s)),
        Ok((100, 0))
    );
    let near = generate_vector(&k, &opc, &profile.sqn(200, 1).unwrap(), &[0, 0], &rand_n(3));
    usim.authenticate(&near.rand, &near.autn).unwrap();

    // Without a delta any jump is accepted, up to the largest SQN.
    let free = SqnProfile {
        ind_bits: 0,
        delta: None,
    };
    let mut usim = Usim::with_profile(&k, &opc, free, AmfPolicy::Any);
    let top = generate_vector(&k, &opc, &sqn_from_u64((1 << 48) - 1), &[0, 0], &rand_n(4));
    usim.authenticate(&top.rand, &top.autn).unwrap();
    assert!(matches!(
        usim.authenticate(&top.rand, &top.autn),
        Err(UsimFailure::SyncFailure { .. })
    ));
}

#[test]
fn amf_separation_bit_policy() {
    let (k, opc) = subscriber();
    let p = SqnProfile::default();
    let set = generate_vector(&k, &opc, &p.sqn(1, 0).unwrap(), &[0x80, 0], &rand_n(1));
    let clear = generate_vector(&k, &opc, &p.sqn(2, 0).unwrap(), &[0x00, 0], &rand_n(2));
    let mut u = Usim::with_profile(&k, &opc, p, AmfPolicy::SeparationBitClear);
    assert_eq!(
        u.authenticate(&set.rand, &set.autn),
        Err(UsimFailure::AmfFailure)
    );
    assert!(u.authenticate(&clear.rand, &clear.autn).is_ok());
    let mut u = Usim::with_profile(&k, &opc, p, AmfPolicy::SeparationBitSet);
    assert_eq!(
        u.authenticate(&clear.rand, &clear.autn),
        Err(UsimFailure::AmfFailure)
    );
    assert!(u.authenticate(&set.rand, &set.autn).is_ok());
}

#[test]
fn sqn_helpers() {
    let p = SqnProfile::default();
    assert_eq!(p.sqn(1, 32), None);
    assert_eq!(p.sqn(1 << 43, 0), None);
    assert_eq!(p.sqn((1 << 43) - 1, 31), Some([0xff; 6]));
    assert_eq!(p.next_after(&[0xff; 6], 0), None);
    assert_eq!(
        sqn_to_u64(&sqn_from_u64(0x1234_5678_9abc)),
        0x1234_5678_9abc
    );
}
