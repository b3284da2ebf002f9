//! Where an actor may run: requirements it is created with, checked against a system's
//! capabilities.

use std::collections::BTreeMap;

/// Capabilities an actor needs: each key must be there, with exactly that value. A list, not a
/// map: what its type requires and what its create asked for are both kept, even where they
/// name the same key (then both must hold).
pub(crate) type Requirements = Vec<(String, String)>;

/// What a type requires and what a create asks for, together.
pub(crate) fn together<'a>(
    declared: impl IntoIterator<Item = (&'a String, &'a String)>,
    asked: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Requirements {
    let mut all: Requirements = declared
        .into_iter()
        .chain(asked)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The requirements `capabilities` do not meet, each as `KEY=VALUE` and what is there instead.
pub(crate) fn unmet(
    capabilities: &BTreeMap<String, String>,
    requirements: &[(String, String)],
) -> Vec<String> {
    requirements
        .iter()
        .filter(|(k, v)| capabilities.get(k) != Some(v))
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
            let asked: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            together(&BTreeMap::new(), &asked)
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
        // A type's own requirement and a create's on the same key must both hold.
        let declared: BTreeMap<String, String> = [("gpu".into(), "yes".into())].into();
        let asked: BTreeMap<String, String> = [("gpu".into(), "no".into())].into();
        assert_eq!(
            unmet(&caps, &together(&declared, &asked)),
            ["gpu=no (here gpu=yes)"]
        );
    }
}
