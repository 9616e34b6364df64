//! Agents' passwords: argon2id hashes in PHC format (salt and parameters inside), checked on a
//! blocking thread so a login does not stall the runtime.
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;

/// Why a password is refused, for a 400.
pub fn check(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!(
            "\"password\" must be at least {MIN_LENGTH} characters long"
        ));
    }
    if password.len() > 1024 {
        return Err("\"password\" must be at most 1024 bytes long".into());
    }
    Ok(())
}

/// The PHC string of a new hash of `password`.
pub async fn hash(password: &str) -> anyhow::Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
    })
    .await?
}

/// A hash no password is known for, verified against when a login names an unknown account.
pub async fn decoy() -> String {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_init(|| async {
            let mut bytes = [0u8; 24];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
            hash(&hex::encode(bytes)).await.unwrap_or_default()
        })
        .await
        .clone()
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub async fn verify(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse").await.expect("hashes");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify("correct horse", &phc).await);
        assert!(!verify("wrong horse", &phc).await);
        assert!(!verify("correct horse", "not a hash").await);
        assert!(check("short").is_err());
        assert!(check("long enough").is_ok());
    }
}
