// The test key corpus as Rust constants: one copy, `include!`d by every crate that signs or
// verifies with these keys (core's unit and integration tests, the fuzz fixtures, the benches)
// inside a module of its own:
//
//     #[allow(dead_code)]
//     mod test_keys {
//         include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/tokens/keys/keys.rs"));
//     }
//
// Every includer sits one directory below the repository root. These keys are public test
// material: never use them outside tests, fuzzing and benches.

macro_rules! key_file {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/tokens/keys/", $name))
    };
}

/// HS256 secret (32 bytes or more).
pub(crate) const HS256_SECRET: &[u8] = key_file!("hs256.secret");
/// HS384 secret.
pub(crate) const HS384_SECRET: &[u8] = key_file!("hs384.secret");
/// HS512 secret.
pub(crate) const HS512_SECRET: &[u8] = key_file!("hs512.secret");
/// RSA 2048-bit private key (PKCS#8 PEM).
pub(crate) const RS256_PRIV: &[u8] = key_file!("rs256.key.pem");
/// Its public key (PEM).
pub(crate) const RS256_PUB: &[u8] = key_file!("rs256.pub.pem");
/// RSA 1024-bit private key: too short, must be refused.
pub(crate) const RSA1024_PRIV: &[u8] = key_file!("rsa1024.key.pem");
/// Its public key.
pub(crate) const RSA1024_PUB: &[u8] = key_file!("rsa1024.pub.pem");
/// P-256 private key.
pub(crate) const EC256_PRIV: &[u8] = key_file!("ec256.key.pem");
/// Its public key.
pub(crate) const EC256_PUB: &[u8] = key_file!("ec256.pub.pem");
/// P-384 private key.
pub(crate) const EC384_PRIV: &[u8] = key_file!("ec384.key.pem");
/// Its public key.
pub(crate) const EC384_PUB: &[u8] = key_file!("ec384.pub.pem");
/// Ed25519 private key.
pub(crate) const ED_PRIV: &[u8] = key_file!("ed25519.key.pem");
/// Its public key.
pub(crate) const ED_PUB: &[u8] = key_file!("ed25519.pub.pem");
