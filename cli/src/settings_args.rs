//! Command-line values for the layer's `DYNABUF_*` settings, checked by the
//! layer's own parser (`dynabuf::settings::resolve`) so that the command
//! accepts exactly what the layer does and names the accepted values when
//! it does not.

use std::collections::HashMap;

/// `value` as the layer would read it from `var`: the value itself, or
/// what the layer accepts.
fn check(var: &'static str, value: &str) -> Result<String, String> {
    let lookup = |k: &str| (k == var).then(|| value.to_string());
    let resolved = dynabuf::settings::resolve(lookup, &HashMap::new(), &[]);
    match resolved.problems.first() {
        None => Ok(value.to_string()),
        Some(p) => Err(format!("accepted values are {} ({var})", p.accepted)),
    }
}

pub fn evict(v: &str) -> Result<String, String> {
    check("DYNABUF_EVICT", v)
}

pub fn sync(v: &str) -> Result<String, String> {
    check("DYNABUF_SYNC", v)
}

pub fn sync_scope(v: &str) -> Result<String, String> {
    check("DYNABUF_SYNC_SCOPE", v)
}

pub fn hazards(v: &str) -> Result<String, String> {
    check("DYNABUF_HAZARDS", v)
}

pub fn attach(v: &str) -> Result<String, String> {
    check("DYNABUF_ATTACH", v)
}

pub fn log(v: &str) -> Result<String, String> {
    check("DYNABUF_LOG", v)
}

pub fn fence_timeout_ms(v: &str) -> Result<String, String> {
    check("DYNABUF_FENCE_TIMEOUT_MS", v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_values_pass_and_others_name_the_accepted_ones() {
        assert_eq!(evict("every:1").as_deref(), Ok("every:1"));
        assert_eq!(hazards("error").as_deref(), Ok("error"));
        assert_eq!(sync("thread").as_deref(), Ok("thread"));
        assert!(attach("dynamic").is_ok() && log("debug").is_ok() && sync_scope("all").is_ok());
        let e = hazards("loud").unwrap_err();
        assert!(e.contains("off, warn, error") && e.contains("DYNABUF_HAZARDS"), "{e}");
        assert!(evict("sometimes").is_err() && fence_timeout_ms("0").is_err() && sync("later").is_err());
    }
}
