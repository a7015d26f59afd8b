//! Start-up's secrets and files: the data keys, the subject key, the
//! demo's key files, the CA for outbound TLS, and a city's own app at the
//! province (role `all`).

use super::*;

/// The data keys: `AKM_DATA_KEY`, else `AKM_DATA_KEY_FILE`, else (role
/// `all`, the demo) a key file the data directory keeps; older keys from
/// `AKM_DATA_KEY_OLD`. Without a key a node does not start.
pub fn keyring(s: &Settings, roles: Roles) -> anyhow::Result<Keyring> {
    let cipher = CipherKind::parse(&s.data_cipher).context("AKM_DATA_CIPHER")?;
    let text = match (&s.data_key, &s.data_key_file) {
        (Some(k), _) => k.expose().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the data key file {} (AKM_DATA_KEY_FILE)", f.display()))?,
        (None, None) if roles == Roles::All => demo_file(&s.data_dir.join("akm.key"), || DataKey::generate(cipher))?,
        (None, None) => anyhow::bail!(
            "no data key: set AKM_DATA_KEY or AKM_DATA_KEY_FILE (base64 of {} bytes for {}); personal data is never stored in the clear",
            cipher.key_len(),
            s.data_cipher
        ),
    };
    let current =
        DataKey::parse(cipher, &text).context("the data key (AKM_DATA_KEY / AKM_DATA_KEY_FILE)")?;
    let older = s
        .data_key_old
        .as_ref()
        .map(|o| {
            o.expose()
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| DataKey::parse(cipher, k))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .context("AKM_DATA_KEY_OLD")?
        .unwrap_or_default();
    Ok(Keyring::new(current, older))
}

/// `AKM_SUBJECT_KEY`, decoded (at least 32 bytes); in role `all` without
/// one, a key file the data directory keeps.
pub(super) fn subject_key(s: &Settings, roles: Roles) -> anyhow::Result<Option<Vec<u8>>> {
    use base64::Engine as _;
    let text = match &s.subject_key {
        Some(k) => k.expose().to_string(),
        None if roles == Roles::All => demo_file(&s.data_dir.join("akm.subject-key"), || {
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
        })?,
        None => return Ok(None),
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|k| k.len() >= 32)
        .context("AKM_SUBJECT_KEY must be base64 of at least 32 bytes")?;
    Ok(Some(key))
}

/// A key file of the demo: read it, or write a fresh one (mode 0600).
pub(super) fn demo_file(path: &Path, fresh: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = fresh();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(
        &mut opts
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?,
        text.as_bytes(),
    )?;
    tracing::warn!(file = %path.display(), "generated a demo key file; a deployment sets its keys itself");
    Ok(text)
}

/// The extra CA of `AKM_CA_FILE`, PEM.
pub(super) fn ca(s: &Settings) -> anyhow::Result<Option<Vec<u8>>> {
    s.ca_file
        .as_ref()
        .map(|f| {
            std::fs::read(f).with_context(|| format!("cannot read AKM_CA_FILE {}", f.display()))
        })
        .transpose()
}

/// The app a city signs its calls to the province with: the configured
/// one; in role `all` also registered at the province here (generated when
/// not configured), scoped to the city's prefecture.
pub(super) async fn city_app(
    s: &Settings,
    province: Option<&RunningNode>,
    clock: &SharedClock,
) -> anyhow::Result<Option<Signing>> {
    let configured = match (&s.province_app_id, &s.province_app_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.expose().to_string())),
        _ => None,
    };
    let (id, secret) = match (configured, province) {
        (Some(c), None) => c,
        (None, None) => {
            if s.auth == AuthMode::On {
                tracing::warn!("AKM_PROVINCE_APP_ID is not set: this city calls the province unsigned, and a province with signing on refuses it");
            }
            return Ok(None);
        }
        (c, Some(p)) => {
            let (id, secret) = c.unwrap_or_else(|| {
                (
                    format!("city-{}", s.city_no.region()),
                    apps::generate_secret(),
                )
            });
            let province_apps = Apps {
                store: p.store.clone(),
                clock: clock.clone(),
                // role `all`: the one province of this process
                reference: Reference::local(p.store.clone()),
            };
            let scopes = Scopes::parse(&[s.city_no.region().to_string()], &[])?;
            province_apps
                .ensure(&AppId::parse(&id)?, AppKind::City, scopes, &secret)
                .await?;
            (id, secret)
        }
    };
    Ok(Some(Signing {
        signer: Signer::new(id, secret, SignMethod::HmacSha256),
        clock: clock.clone(),
    }))
}
