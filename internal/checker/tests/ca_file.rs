//! Reading the extra trusted roots of `UPWATCH_CHECK_CA_FILE`.

use upwatch_testkit::tls::TestCa;

/// `UPWATCH_CHECK_CA_FILE`: a PEM file of CA certificates is read; a missing file, one that is
/// not PEM certificates, or one with none, is refused with a sentence naming the file.
#[test]
fn ca_files_are_read_or_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, TestCa::shared().pem()).unwrap();
    let roots = upwatch_checker::load_roots(&good).unwrap();
    assert_eq!(roots, vec![TestCa::shared().der()]);

    let missing = dir.path().join("missing.pem");
    let err = upwatch_checker::load_roots(&missing).unwrap_err();
    assert!(
        err.starts_with("cannot read ") && err.contains("missing.pem"),
        "{err}"
    );

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = upwatch_checker::load_roots(&empty).unwrap_err();
    assert!(err.contains("holds no certificate"), "{err}");

    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = upwatch_checker::load_roots(&broken).unwrap_err();
    assert!(err.contains("broken.pem"), "{err}");
}
