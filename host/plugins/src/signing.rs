//! Signed components: an Ed25519 signature over a component's sha256 and the
//! manifest fields that say what it is and may do (name, version, kind,
//! capabilities), kept beside it as `NAME.sig`. `palisade plugins keygen` makes a
//! key pair, `palisade plugins sign` the signature; a host given [`Trust`] (`PLUGIN_TRUSTED_KEYS`,
//! `PLUGIN_REQUIRE_SIGNATURE`) refuses, at load, an unsigned component, one
//! signed by a key it does not trust, or one whose component or manifest fields
//! changed after signing — the registry then keeps the old version serving.
//! A signature that does not verify is refused even when signatures are optional.
//! Format 1 (before capabilities) signed name, version and kind only: it is still
//! accepted for a manifest that grants no more than the default capabilities, and
//! refused (re-sign) for one that grants more.

use super::Manifest;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The signature file's format version (2: capabilities are signed).
const FORMAT: u32 = 2;

/// `NAME.sig`: who signed and the signature (hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub format: u32,
    /// The signer's public key (hex, 32 bytes).
    pub key: String,
    /// Over [`payload`] (hex, 64 bytes).
    pub signature: String,
    /// What was signed, for people reading the file (the check rebuilds it).
    pub signed: String,
}

/// What is signed: the component's sha256, the manifest's identity and (format
/// 2) its capabilities.
pub fn payload(manifest: &Manifest, wasm_sha256: &str, format: u32) -> String {
    let identity = format!(
        "name={}\nversion={}\nkind={}\nsha256={wasm_sha256}\n",
        manifest.name,
        manifest.version,
        manifest.kind.as_str()
    );
    match format {
        1 => format!("palisade-plugin-signature-v1\n{identity}"),
        _ => {
            let caps: Vec<&str> = manifest.capabilities.iter().map(|c| c.as_str()).collect();
            format!("palisade-plugin-signature-v2\n{identity}capabilities={}\n", caps.join(","))
        }
    }
}

/// A key's short id: `ed25519:` and the first 12 hex digits of the sha256 of its bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    format!("ed25519:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..12])
}

/// A new key pair from the system's random source.
pub fn generate() -> std::io::Result<SigningKey> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Sign a component (its bytes' sha256) and its manifest.
pub fn sign(key: &SigningKey, manifest: &Manifest, wasm: &[u8]) -> SignatureFile {
    let signed = payload(manifest, &hex::encode(Sha256::digest(wasm)), FORMAT);
    SignatureFile {
        format: FORMAT,
        key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(key.sign(signed.as_bytes()).to_bytes()),
        signed,
    }
}

/// A key from hex text (a `.pub` or `.key` file's content), 32 bytes.
fn key_bytes(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("{} bytes, not 32", b.len()))
}

/// Read a secret key file written by `keygen`.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(SigningKey::from_bytes(&key_bytes(&text).map_err(|e| format!("{}: {e}", path.display()))?))
}

/// Which signers a host accepts, and whether it insists on a signature.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub keys: Vec<VerifyingKey>,
    pub require: bool,
}

impl Trust {
    /// From `PLUGIN_TRUSTED_KEYS` entries: hex public keys or paths to `.pub` files.
    pub fn from_entries(entries: &[String], require: bool) -> Result<Self, String> {
        let mut keys = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let text = if Path::new(entry).is_file() {
                std::fs::read_to_string(entry).map_err(|e| format!("PLUGIN_TRUSTED_KEYS {entry}: {e}"))?
            } else {
                entry.to_string()
            };
            let bytes = key_bytes(&text).map_err(|e| format!("PLUGIN_TRUSTED_KEYS `{entry}`: {e}"))?;
            keys.push(VerifyingKey::from_bytes(&bytes).map_err(|e| format!("PLUGIN_TRUSTED_KEYS `{entry}`: {e}"))?);
        }
        if require && keys.is_empty() {
            return Err("PLUGIN_REQUIRE_SIGNATURE=true needs PLUGIN_TRUSTED_KEYS (hex keys or .pub files)".into());
        }
        Ok(Trust { keys, require })
    }

    /// Check a component before it loads: the signer's key id when signed (and
    /// trusted, or signatures are optional), `None` when unsigned and allowed,
    /// else why it is refused.
    pub fn check(&self, manifest: &Manifest, wasm_sha256: &str, sig: Option<&[u8]>) -> Result<Option<String>, String> {
        let Some(sig) = sig else {
            return if self.require {
                Err(format!(
                    "unsigned: no {}.sig beside it, and PLUGIN_REQUIRE_SIGNATURE=true (sign it with `palisade plugins sign`)",
                    manifest.name
                ))
            } else {
                Ok(None)
            };
        };
        let file: SignatureFile =
            serde_json::from_slice(sig).map_err(|e| format!("{}.sig is not a signature file: {e}", manifest.name))?;
        if !(1..=FORMAT).contains(&file.format) {
            return Err(format!("{}.sig has format {} (this build reads 1 to {FORMAT})", manifest.name, file.format));
        }
        if file.format == 1 && manifest.capabilities.iter().any(|c| !super::capabilities::DEFAULT.contains(c)) {
            return Err(format!(
                "{}.sig is format 1, which does not cover capabilities, and the manifest grants more than the \
                 default: re-sign it with `palisade plugins sign`",
                manifest.name
            ));
        }
        let bad = |what: String| format!("{}.sig: {what}", manifest.name);
        let key =
            key_bytes(&file.key).and_then(|b| VerifyingKey::from_bytes(&b).map_err(|e| e.to_string())).map_err(bad)?;
        let signature = hex::decode(&file.signature)
            .map_err(|e| e.to_string())
            .and_then(|b| Signature::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(bad)?;
        let id = key_id(&key);
        if key.verify(payload(manifest, wasm_sha256, file.format).as_bytes(), &signature).is_err() {
            return Err(format!(
                "the signature by {id} does not match: the component or its manifest (name, version, kind, \
                 capabilities) changed after signing"
            ));
        }
        if !self.keys.contains(&key) {
            if self.require {
                return Err(format!("signed by {id}, which is not in PLUGIN_TRUSTED_KEYS"));
            }
            return Ok(None);
        }
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(version: &str) -> Manifest {
        Manifest::parse(&format!("name = \"r\"\nversion = \"{version}\"\nkind = \"heuristic\"\n")).unwrap()
    }

    fn granting(caps: &str) -> Manifest {
        Manifest::parse(&format!("name = \"r\"\nversion = \"1.0.0\"\nkind = \"heuristic\"\ncapabilities = [{caps}]\n"))
            .unwrap()
    }

    #[test]
    fn capabilities_are_signed_and_format_1_covers_only_the_default_grant() {
        let key = generate().unwrap();
        let wasm = b"component bytes";
        let sha = hex::encode(Sha256::digest(wasm));
        let trust = Trust { keys: vec![key.verifying_key()], require: true };
        let sig = serde_json::to_vec(&sign(&key, &granting("\"log\""), wasm)).unwrap();
        assert!(trust.check(&granting("\"log\""), &sha, Some(&sig)).is_ok());
        let widened = trust.check(&granting("\"log\", \"labels\""), &sha, Some(&sig)).unwrap_err();
        assert!(widened.contains("capabilities) changed after signing"), "{widened}");
        // A format-1 signature (name, version, kind) from before capabilities existed.
        let m = manifest("1.0.0");
        let v1 = SignatureFile {
            format: 1,
            key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(key.sign(payload(&m, &sha, 1).as_bytes()).to_bytes()),
            signed: payload(&m, &sha, 1),
        };
        let v1 = serde_json::to_vec(&v1).unwrap();
        assert!(trust.check(&m, &sha, Some(&v1)).is_ok(), "the default grant: format 1 still verifies");
        let more = trust.check(&granting("\"log\", \"classify\""), &sha, Some(&v1)).unwrap_err();
        assert!(more.contains("re-sign"), "{more}");
    }

    #[test]
    fn a_signature_verifies_and_any_change_is_refused_with_a_reason() {
        let key = generate().unwrap();
        let wasm = b"component bytes";
        let sha = hex::encode(Sha256::digest(wasm));
        let sig = serde_json::to_vec(&sign(&key, &manifest("1.0.0"), wasm)).unwrap();
        let trust = Trust { keys: vec![key.verifying_key()], require: true };
        assert_eq!(trust.check(&manifest("1.0.0"), &sha, Some(&sig)).unwrap(), Some(key_id(&key.verifying_key())));
        let changed = trust.check(&manifest("1.0.1"), &sha, Some(&sig)).unwrap_err();
        assert!(changed.contains("changed after signing"), "{changed}");
        let other = hex::encode(Sha256::digest(b"other bytes"));
        assert!(trust.check(&manifest("1.0.0"), &other, Some(&sig)).unwrap_err().contains("changed after signing"));
        assert!(trust.check(&manifest("1.0.0"), &sha, None).unwrap_err().contains("unsigned"));
        let stranger = Trust { keys: vec![generate().unwrap().verifying_key()], require: true };
        assert!(
            stranger.check(&manifest("1.0.0"), &sha, Some(&sig)).unwrap_err().contains("not in PLUGIN_TRUSTED_KEYS")
        );
        // Optional signatures: unsigned and unknown signers load, a broken signature does not.
        let optional = Trust { keys: vec![], require: false };
        assert_eq!(optional.check(&manifest("1.0.0"), &sha, None).unwrap(), None);
        assert_eq!(optional.check(&manifest("1.0.0"), &sha, Some(&sig)).unwrap(), None);
        assert!(optional.check(&manifest("2.0.0"), &sha, Some(&sig)).is_err());
    }

    #[test]
    fn trusted_keys_are_read_from_hex_or_files_and_required_ones_must_be_given() {
        let key = generate().unwrap().verifying_key();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("team.pub");
        std::fs::write(&file, hex::encode(key.as_bytes()) + "\n").unwrap();
        let trust = Trust::from_entries(&[file.display().to_string(), hex::encode(key.as_bytes())], true).unwrap();
        assert_eq!(trust.keys, vec![key, key]);
        assert!(Trust::from_entries(&[], true).unwrap_err().contains("PLUGIN_TRUSTED_KEYS"));
        assert!(Trust::from_entries(&["abcd".into()], false).unwrap_err().contains("2 bytes"));
    }
}
