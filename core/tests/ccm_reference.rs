//! Our AES-128-CCM against the `ccm` crate (RustCrypto) as an independent reference: every
//! length of message (0 to 300 bytes, crossing block boundaries) and AAD, both tag lengths,
//! seal equal byte for byte, open of the reference's output, and rejection of any changed bit.

use aes::Aes128;
use ccm::aead::generic_array::GenericArray;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U12, U16, U8};
use ccm::Ccm;
use m2msec::crypto::aead::{CcmKey, TagLen};
use proptest::prelude::*;

fn reference(
    key: &[u8; 16],
    tag: TagLen,
    nonce: &[u8; 12],
    aad: &[u8],
    msg: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut buf = msg.to_vec();
    let n = GenericArray::from_slice(nonce);
    let k = GenericArray::from_slice(key);
    let t = match tag {
        TagLen::Sixteen => Ccm::<Aes128, U16, U12>::new(k)
            .encrypt_in_place_detached(n, aad, &mut buf)
            .unwrap()
            .to_vec(),
        TagLen::Eight => Ccm::<Aes128, U8, U12>::new(k)
            .encrypt_in_place_detached(n, aad, &mut buf)
            .unwrap()
            .to_vec(),
    };
    (buf, t)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn same_as_the_ccm_crate(
        key in any::<[u8; 16]>(),
        nonce in any::<[u8; 12]>(),
        aad in prop::collection::vec(any::<u8>(), 0..40),
        msg in prop::collection::vec(any::<u8>(), 0..300),
        eight in any::<bool>(),
        flip in any::<usize>(),
    ) {
        let tag = if eight { TagLen::Eight } else { TagLen::Sixteen };
        let ours = CcmKey::new(&key, tag);
        let (ct, t) = reference(&key, tag, &nonce, &aad, &msg);
        let mut buf = msg.clone();
        let mut our_tag = vec![0u8; tag.bytes()];
        ours.seal_in_place(&nonce, &aad, &mut buf, &mut our_tag).unwrap();
        prop_assert_eq!(&buf, &ct);
        prop_assert_eq!(&our_tag, &t);
        ours.open_in_place(&nonce, &aad, &mut buf, &t).unwrap();
        prop_assert_eq!(&buf, &msg);

        // Any single changed bit in ciphertext or tag is refused, and leaves zeros behind.
        let mut ct2 = ct.clone();
        let mut t2 = t.clone();
        let bits = 8 * (ct2.len() + t2.len());
        let b = flip % bits;
        if b / 8 < ct2.len() { ct2[b / 8] ^= 1 << (b % 8) } else { t2[b / 8 - ct.len()] ^= 1 << (b % 8) }
        prop_assert!(ours.open_in_place(&nonce, &aad, &mut ct2, &t2).is_err());
        prop_assert!(ct2.iter().all(|&x| x == 0));
    }
}
