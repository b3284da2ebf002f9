//! Where an actor may run: requirements it is created with, checked against a system's
//! capabilities.

use std::collections::BTreeMap;

/// Capabilities an actor needs: each key must be there, with exactly that value.
pub(crate) type Requirements = BTreeMap<String, String>;

/// The requirements `capabilities` do not meet, each as `KEY=VALUE` and what is there instead.
pub(crate) fn unmet(
    capabilities: &BTreeMap<String, String>,
    requirements: &Requirements,
) -> Vec<String> {
    requirements
        .iter()
        .filter(|(k, v)| capabilities.get(*k) != Some(*v))
        .map(|(k, v)| match capabilities.get(k) {
            Some(have) => format!("{k}={v} (here {k}={have})"),
            None => format!("{k}={v} (here no {k})"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_requirement_needs_its_exact_value() {
        let caps: BTreeMap<String, String> = [("gpu", "yes"), ("zone", "north")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = |pairs: &[(&str, &str)]| -> Requirements {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(unmet(&caps, &req(&[])).is_empty());
        assert!(unmet(&caps, &req(&[("gpu", "yes")])).is_empty());
        assert_eq!(
            unmet(
                &caps,
                &req(&[("gpu", "no"), ("disk", "ssd"), ("zone", "north")])
            ),
            ["disk=ssd (here no disk)", "gpu=no (here gpu=yes)"]
        );
    }
}
