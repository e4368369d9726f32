//! The lifecycle events' configuration from the environment: `LIFECYCLE_FILE` (YAML, see
//! [`crate::domain::lifecycle::config`]) and `LIFECYCLE_TIMELINE`.

use super::{bad, ConfigError};

/// The lifecycle configuration: the file's (`LIFECYCLE_FILE`) or the defaults, with
/// `LIFECYCLE_TIMELINE`'s types when set.
pub(super) fn lifecycle(
    file: Option<String>,
    timeline: Option<String>,
) -> Result<crate::domain::lifecycle::config::LifecycleConfig, ConfigError> {
    use crate::domain::lifecycle::config::LifecycleConfig;
    let mut config = match file {
        None => LifecycleConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path.trim())
                .map_err(|e| bad("LIFECYCLE_FILE", format!("'{path}' could not be read: {e}")))?;
            LifecycleConfig::from_yaml(&text)
                .map_err(|e| bad("LIFECYCLE_FILE", format!("'{path}': {e}")))?
        }
    };
    if let Some(list) = timeline {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let t: crate::domain::lifecycle::EventType = name
                .parse()
                .map_err(|e: String| bad("LIFECYCLE_TIMELINE", e))?;
            config.timeline.insert(t.as_str().to_string());
        }
    }
    Ok(config)
}
